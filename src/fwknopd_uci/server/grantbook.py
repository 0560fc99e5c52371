# The daemon's own record of what it has opened, so that
#  * the number of live grants is bounded (every nft transaction costs time
#    in proportion to the set's size - about 5 us per element - so an
#    unbounded set would let one key holder slow every later knock down), and
#  * a second knock never shortens a grant that is already open for longer
#    (the kernel element is replaced with the longer of the two timeouts).
# It only mirrors the kernel; the kernel's timeout is what closes a port.

from __future__ import annotations

from ipaddress import IPv4Address

from ..model import Grant

__all__ = ["MAX_ACTIVE_GRANTS", "GrantBook"]

# 1,024 live (source, proto, port) grants keep a grant transaction near 5 ms
# on a router-class CPU; a household or small office needs a handful.
MAX_ACTIVE_GRANTS = 1024

Key = tuple[IPv4Address, str, int]


class GrantBook:
    def __init__(self, max_active: int = MAX_ACTIVE_GRANTS) -> None:
        self.max_active = max_active
        self._expiry: dict[Key, float] = {}

    def __len__(self) -> int:
        return len(self._expiry)

    def plan(self, grant: Grant, now: float) -> Grant | None:
        """The grant to make (never shorter than what is open), or None if full."""
        self._prune(now)
        key = (grant.source, grant.proto, grant.port)
        current = self._expiry.get(key)
        if current is None and len(self._expiry) >= self.max_active:
            return None
        if current is not None and current - now > grant.timeout:
            return Grant(grant.source, grant.proto, grant.port, int(current - now + 0.999))
        return grant

    def record(self, grant: Grant, now: float) -> None:
        key = (grant.source, grant.proto, grant.port)
        self._expiry[key] = max(self._expiry.get(key, 0.0), now + grant.timeout)

    def clear(self) -> None:
        self._expiry.clear()

    def _prune(self, now: float) -> None:
        if len(self._expiry) >= self.max_active // 2:
            for key in [k for k, t in self._expiry.items() if t <= now]:
                del self._expiry[key]
