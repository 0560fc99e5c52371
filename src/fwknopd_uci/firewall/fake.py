# A recording stand-in for a real firewall, for the tests of the layers above
# (the daemon, the access decision feeding it).
#
# Strategy: keep what a real backend would hold (open grants with a deadline
# on an injectable clock), record every call in order, and fail on demand
# with the same FirewallError a real backend raises, so the caller's error
# handling can be tested without root or nftables.
#
# Invariants:
# - Every call is recorded, also the ones told to fail (marked failed=True);
#   a failed call changes no state.
# - Grants behave like the nftables set: a repeated grant of the same
#   source/proto/port resets its timeout, and close() keeps them.

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

from fwknopd_uci.firewall.base import ActiveGrant, FirewallError
from fwknopd_uci.model import Grant

__all__ = ["FirewallCall", "RecordingFirewall"]

_METHODS = frozenset({"start", "grant", "list_grants", "flush", "close"})


@dataclass(frozen=True, slots=True)
class FirewallCall:
    """One call made to a RecordingFirewall."""

    method: str  # "start", "grant", "list_grants", "flush" or "close"
    grant: Grant | None = None
    failed: bool = False


class RecordingFirewall:
    """A Firewall that records its calls and can be told to fail.

    Args:
        clock: seconds, monotonic; decides when recorded grants expire.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.calls: list[FirewallCall] = []
        # (source, proto, port) -> deadline on self._clock
        self._open: dict[tuple[IPv4Address, str, int], float] = {}
        # method -> (message, remaining failures; None = until cleared)
        self._failures: dict[str, tuple[str, int | None]] = {}

    def fail(self, method: str, message: str = "recorded firewall failure",
             *, times: int | None = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise FirewallError.

        ``times=None`` fails every call until ``clear_failures()``.
        """
        if method not in _METHODS:
            raise ValueError(f"unknown firewall method {method!r}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None)")
        self._failures[method] = (message, times)

    def clear_failures(self) -> None:
        """Let every method succeed again."""
        self._failures.clear()

    @property
    def grants(self) -> list[Grant]:
        """Every grant that was asked for and succeeded, in order."""
        return [c.grant for c in self.calls
                if c.method == "grant" and c.grant is not None and not c.failed]

    def methods(self) -> list[str]:
        """The names of all recorded calls, in order (failed ones too)."""
        return [c.method for c in self.calls]

    def start(self) -> None:
        """Record the call."""
        self._record("start")

    def grant(self, grant: Grant) -> None:
        """Record the grant and hold it open until its timeout runs out."""
        self._record("grant", grant)
        key = (grant.source, grant.proto, grant.port)
        self._open[key] = self._clock() + grant.timeout

    def list_grants(self) -> list[ActiveGrant]:
        """The recorded grants that have not expired, whole seconds left."""
        self._record("list_grants")
        now = self._clock()
        self._open = {k: d for k, d in self._open.items() if d > now}
        return [ActiveGrant(source=s, proto=p, port=port, expires_in=math.floor(d - now))
                for (s, p, port), d in self._open.items()]

    def flush(self) -> None:
        """Record the call and forget every open grant."""
        self._record("flush")
        self._open.clear()

    def close(self) -> None:
        """Record the call; open grants stay, as with a real backend."""
        self._record("close")

    def _record(self, method: str, grant: Grant | None = None) -> None:
        failure = self._failures.get(method)
        if failure is None:
            self.calls.append(FirewallCall(method, grant))
            return
        message, times = failure
        if times is not None:
            if times <= 1:
                del self._failures[method]
            else:
                self._failures[method] = (message, times - 1)
        self.calls.append(FirewallCall(method, grant, failed=True))
        raise FirewallError(message)
