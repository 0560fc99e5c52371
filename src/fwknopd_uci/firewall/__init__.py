# firewall/: grants out. A small lifecycle interface (base), the nftables
# backend for firewall4 (nftables, with its nft runners) and a recording fake
# for tests of the layers above. See nftables.py for the design.

from __future__ import annotations

from fwknopd_uci.firewall.base import NO_EXPIRY, ActiveGrant, Firewall, FirewallError
from fwknopd_uci.firewall.fake import FirewallCall, RecordingFirewall
from fwknopd_uci.firewall.nftables import NftablesFirewall
from fwknopd_uci.firewall.runners import (
    LibNftablesRunner,
    NftCommandRunner,
    NftRunner,
    default_runner,
)

__all__ = [
    "NO_EXPIRY",
    "ActiveGrant",
    "Firewall",
    "FirewallCall",
    "FirewallError",
    "LibNftablesRunner",
    "NftCommandRunner",
    "NftRunner",
    "NftablesFirewall",
    "RecordingFirewall",
    "default_runner",
]
