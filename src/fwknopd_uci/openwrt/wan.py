# Which network device carries a logical network: netifd's `l3_device`.
#
# Purpose: what the shipped script gets from `network_get_device` (openwrt.md
# 1.6, 6): the device to sniff for a logical network such as `wan`, which is
# `pppoe-wan` on PPPoE (not the `wan.7` under it), and why there is none yet:
# the interface is down, still dialling (`pending`), not configured, or ubus
# cannot be asked.
#
# Strategy: `ubus call network.interface.<name> status` through ubus.py (the
# python `ubus` bindings when installed, else the `ubus` command); an unknown
# object is "missing", any other failure "unavailable". netifd reports
# `l3_device` only while `up`.
#
# Invariants: resolve_network never raises for a failing ubus; the result
# says what happened. The network name is checked before it is put into an
# object path. Only the socket given is used (tests pass a scratch one).

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..config.errors import shown
from .ubus import UBUS_NOT_FOUND, UBUS_TIMEOUT, Bindings, UbusError, ubus_call

__all__ = ["UBUS_NOT_FOUND", "WanStatus", "interpret_status", "resolve_network"]

_NETWORK: Final = re.compile(r"[A-Za-z0-9_]{1,64}")

State = Literal["up", "down", "pending", "missing", "unavailable"]


@dataclass(frozen=True, slots=True)
class WanStatus:
    """The answer for one logical network.

    Attributes:
        network: the logical network asked about, e.g. ``wan``.
        state: ``up`` (``device`` is set), ``down``, ``pending`` (dialling),
            ``missing`` (netifd has no such interface) or ``unavailable``
            (ubus could not be asked or answered nonsense).
        device: the L3 device while up, e.g. ``pppoe-wan``; else None.
        detail: more words for ``unavailable`` (and the proto, if known).
    """

    network: str
    state: State
    device: str | None = None
    detail: str = ""

    @property
    def reason(self) -> str:
        """Why there is no device, in words (empty when up)."""
        if self.state == "pending":
            return "netifd: pending, still connecting"
        if self.state == "down":
            return "netifd: the interface is down"
        if self.state == "missing":
            return f"netifd has no interface '{shown(self.network)}'"
        if self.state == "unavailable":
            return f"cannot ask netifd: {self.detail}"
        return ""


def interpret_status(network: str, status: Mapping[str, Any]) -> WanStatus:
    """A WanStatus from netifd's ``status`` reply (openwrt.md 6)."""
    device = status.get("l3_device")
    if status.get("up") is True:
        if isinstance(device, str) and device:
            return WanStatus(network, "up", device)
        return WanStatus(network, "unavailable", None, "it is up but has no l3_device")
    if status.get("pending") is True:
        return WanStatus(network, "pending")
    return WanStatus(network, "down")


def resolve_network(network: str, socket: str | None = None, *, command: str = "ubus",
                    timeout: float = UBUS_TIMEOUT,
                    bindings: Bindings = "auto") -> WanStatus:
    """Ask netifd for the L3 device of a logical network.

    Args:
        network: the logical network (a UCI interface name), e.g. ``wan``.
        socket: the ubus socket; None lets the client use its default.
        command: the ubus command, found on PATH, used without bindings.
        timeout: seconds to wait for the command.
        bindings: the python ``ubus`` module; ``"auto"`` imports it when
            installed, None forces the command.

    Returns:
        A WanStatus; ``state == "up"`` exactly when ``device`` is set.
    """
    if _NETWORK.fullmatch(network) is None:
        return WanStatus(network, "unavailable", None, "not a logical network name")
    try:
        reply = ubus_call(f"network.interface.{network}", "status", {}, socket=socket,
                          command=command, timeout=timeout, bindings=bindings)
    except UbusError as exc:
        if exc.not_found:
            return WanStatus(network, "missing")
        return WanStatus(network, "unavailable", None, str(exc))
    return interpret_status(network, reply)
