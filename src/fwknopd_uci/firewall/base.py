# The firewall interface every backend implements, and the values and error
# it speaks in.
#
# Strategy: the daemon only ever asks a firewall for four things: make sure
# our objects exist (start), open one Grant (grant), say what is open
# (list_grants) and close everything (flush). Expiry is not part of the
# interface on purpose: a backend must make the kernel expire each grant by
# itself, so a crashed or killed daemon can never leave a port open longer
# than it was granted, and there is no revoke timer to get wrong.
#
# Invariants:
# - Every failure a caller can see is a FirewallError with a one-line,
#   human-readable message (it goes to the log as is).
# - close() never removes grants: they run out on their own.

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Protocol, runtime_checkable

from fwknopd_uci.model import Grant

__all__ = ["NO_EXPIRY", "ActiveGrant", "Firewall", "FirewallError"]

# expires_in of an element that has no timeout at all. We never create such
# an element; seeing one means someone else added it by hand, and it stays
# open until removed, so list_grants() must show it rather than hide it.
NO_EXPIRY = -1


class FirewallError(Exception):
    """The firewall could not be read or changed.

    The message is a single line meant for the log, for example
    ``nftables table inet fw4 not found: is firewall4 running?``.
    """


@dataclass(frozen=True, slots=True)
class ActiveGrant:
    """One open grant as the firewall reports it.

    ``expires_in`` is the number of whole seconds left before the kernel
    removes it, or ``NO_EXPIRY`` (-1) for an element without a timeout.
    ``proto`` is normally "tcp" or "udp"; an element added by hand may show
    another protocol name or number as text.
    """

    source: IPv4Address
    proto: str
    port: int
    expires_in: int


@runtime_checkable
class Firewall(Protocol):
    """What the daemon needs from a firewall backend."""

    def start(self) -> None:
        """Make sure our own firewall objects exist, creating them if not.

        Raises:
            FirewallError: the firewall is missing or cannot be changed.
        """

    def grant(self, grant: Grant) -> None:
        """Open ``grant.proto``/``grant.port`` for ``grant.source``.

        The opening lasts exactly ``grant.timeout`` seconds from now, also
        when the same source, protocol and port were already open (a new
        knock refreshes the timeout; it never adds to it).

        Raises:
            FirewallError: the grant could not be put in place.
        """

    def list_grants(self) -> list[ActiveGrant]:
        """Return every grant that is open now, with its remaining time.

        Raises:
            FirewallError: the firewall could not be read.
        """

    def flush(self) -> None:
        """Remove every grant at once.

        Raises:
            FirewallError: the firewall could not be changed.
        """

    def close(self) -> None:
        """Release the backend's resources; open grants stay and expire."""
