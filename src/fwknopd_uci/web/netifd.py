# The router's logical networks, for the page's network select.
#
# Strategy: `ubus call network.interface dump` (netifd) lists every logical
# interface with its status (openwrt.md 6). The WAN is detected as
# /lib/functions/network.sh's network_find_wan does it: the interface that
# holds the IPv4 default route (target 0.0.0.0, mask 0); when none is up, an
# interface named `wan`. The loopback interface is left out.
#
# Invariants: list_networks never raises; None means "netifd could not be
# asked" and the page falls back to a free-text field.

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..openwrt.ubus import UBUS_TIMEOUT, Bindings, UbusError, ubus_call

__all__ = ["Networks", "list_networks", "networks_from_dump"]

log = logging.getLogger(__name__)

_NAME: Final = re.compile(r"[A-Za-z0-9_]{1,64}")  # a UCI section name
_MAX_INTERFACES: Final = 256


@dataclass(frozen=True, slots=True)
class Networks:
    """The logical networks netifd knows.

    Attributes:
        names: interface names in netifd's order, e.g. ``("lan", "wan", "wan6")``.
        wan: the detected WAN (holds the IPv4 default route), or None.
        up: the names of the interfaces that are up.
    """

    names: tuple[str, ...]
    wan: str | None = None
    up: frozenset[str] = frozenset()


def _has_default_route(status: Mapping[str, Any]) -> bool:
    routes = status.get("route")
    if not isinstance(routes, list):
        return False
    return any(isinstance(r, dict) and r.get("target") == "0.0.0.0" and r.get("mask") == 0
               for r in routes)


def networks_from_dump(reply: Mapping[str, Any]) -> Networks | None:
    """Networks from netifd's ``dump`` reply, None when it has no list."""
    interfaces = reply.get("interface")
    if not isinstance(interfaces, list):
        return None
    names: list[str] = []
    up: set[str] = set()
    wan: str | None = None
    for status in interfaces[:_MAX_INTERFACES]:
        if not isinstance(status, dict):
            continue
        name = status.get("interface")
        if not isinstance(name, str) or _NAME.fullmatch(name) is None or name == "loopback" \
                or name in names:
            continue
        names.append(name)
        if status.get("up") is True:
            up.add(name)
            if wan is None and _has_default_route(status):
                wan = name
    if wan is None and "wan" in names:
        wan = "wan"
    return Networks(tuple(names), wan, frozenset(up))


def list_networks(socket: str | None = None, *, command: str = "ubus",
                  timeout: float = UBUS_TIMEOUT, bindings: Bindings = "auto") -> Networks | None:
    """Ask netifd for its interfaces; None when ubus cannot be asked."""
    try:
        reply = ubus_call("network.interface", "dump", {}, socket=socket, command=command,
                          timeout=timeout, bindings=bindings)
    except UbusError as exc:
        log.debug("network.interface dump failed: %s", exc)
        return None
    return networks_from_dump(reply)
