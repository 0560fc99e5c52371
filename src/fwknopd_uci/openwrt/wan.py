# Which network device carries a logical network: netifd's `l3_device`.
#
# Purpose: what the shipped script gets from `network_get_device` (openwrt.md
# 1.6, 6): the device to sniff for a logical network such as `wan`, which is
# `pppoe-wan` on PPPoE (not the `wan.7` under it), and why there is none yet:
# the interface is down, still dialling (`pending`), not configured, or ubus
# cannot be asked.
#
# Strategy: `ubus call network.interface.<name> status`, through the python
# `ubus` bindings when they are installed (connect, call, disconnect), else
# through the `ubus` command (argv list, a timeout, JSON on stdout, exit code
# 4 = UBUS_STATUS_NOT_FOUND). netifd reports `l3_device` only while `up`.
#
# Invariants: resolve_network never raises for a failing ubus; the result
# says what happened. The network name is checked before it is put into an
# object path. Only the socket given is used (tests pass a scratch one).

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final, Literal

from ..config.errors import shown

__all__ = ["UBUS_NOT_FOUND", "WanStatus", "interpret_status", "resolve_network"]

#: Exit code of the ubus command for an unknown object (UBUS_STATUS_NOT_FOUND).
UBUS_NOT_FOUND: Final = 4
UBUS_TIMEOUT: Final = 10.0  # seconds; netifd answers in milliseconds
_NETWORK: Final = re.compile(r"[A-Za-z0-9_]{1,64}")
_MAX_OUTPUT: Final = 1024 * 1024  # a status dump is a few KiB

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


def _bindings() -> ModuleType | None:
    """The python ``ubus`` module if it is installed (or injected by a test)."""
    module = sys.modules.get("ubus")
    if module is not None:
        return module
    if importlib.util.find_spec("ubus") is None:
        return None
    return importlib.import_module("ubus")


def _call_bindings(module: ModuleType, network: str, socket: str | None) -> WanStatus:
    obj = f"network.interface.{network}"
    try:
        if socket is None:
            module.connect()
        else:
            module.connect(socket)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        return WanStatus(network, "unavailable", None, f"ubus connect failed: {shown(str(exc))}")
    try:
        reply = module.call(obj, "status", {})
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        text = str(exc)
        if "not found" in text.lower():
            return WanStatus(network, "missing")
        return WanStatus(network, "unavailable", None, f"ubus call failed: {shown(text)}")
    finally:
        try:
            module.disconnect()
        except (RuntimeError, OSError, ValueError, TypeError):
            pass  # already closed: nothing to release
    if isinstance(reply, list):
        if not reply:
            return WanStatus(network, "missing")
        reply = reply[0]
    if not isinstance(reply, dict):
        return WanStatus(network, "unavailable", None, "ubus returned no status object")
    return interpret_status(network, reply)


def _call_command(command: str, network: str, socket: str | None,
                  timeout: float) -> WanStatus:
    argv = [command]
    if socket is not None:
        argv += ["-s", socket]
    argv += ["call", f"network.interface.{network}", "status"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return WanStatus(network, "unavailable", None, f"no '{command}' command")
    except subprocess.TimeoutExpired:
        return WanStatus(network, "unavailable", None, f"ubus did not answer in {timeout:g} s")
    except OSError as exc:
        return WanStatus(network, "unavailable", None, f"cannot run ubus: {shown(str(exc))}")
    if done.returncode == UBUS_NOT_FOUND:
        return WanStatus(network, "missing")
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        tail = f": {shown(said[-1])}" if said else ""
        return WanStatus(network, "unavailable", None, f"ubus exited {done.returncode}{tail}")
    try:
        reply = json.loads(done.stdout[:_MAX_OUTPUT])
    except ValueError:
        return WanStatus(network, "unavailable", None, "ubus printed no JSON")
    if not isinstance(reply, dict):
        return WanStatus(network, "unavailable", None, "ubus returned no status object")
    return interpret_status(network, reply)


def resolve_network(network: str, socket: str | None = None, *, command: str = "ubus",
                    timeout: float = UBUS_TIMEOUT,
                    bindings: ModuleType | None | Literal["auto"] = "auto") -> WanStatus:
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
    module = _bindings() if bindings == "auto" else bindings
    if isinstance(module, ModuleType):
        return _call_bindings(module, network, socket)
    return _call_command(command, network, socket, timeout)
