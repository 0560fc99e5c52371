# One ubus call, for everything that asks the router's daemons: netifd's
# `network.interface.<name> status` (wan.py), and for the settings page
# rpcd's `session access` (web/session.py) and `network.interface dump`
# (web/netifd.py).
#
# Strategy: the python `ubus` bindings when they are installed (connect,
# call, disconnect, under a lock because the bindings keep one connection per
# process and the standalone server has threads), else the `ubus` command as
# an argv list (never a shell) with a timeout, JSON on stdout. Exit code 4 is
# UBUS_STATUS_NOT_FOUND (no such object, or rpcd's answer for an unknown
# session).
#
# Invariants: ubus_call raises only UbusError; a message never contains the
# arguments (they may hold a session id).

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Final, Literal

from ..config.errors import shown

__all__ = ["UBUS_NOT_FOUND", "UBUS_TIMEOUT", "Bindings", "UbusError", "ubus_call"]

#: Exit code of the ubus command for an unknown object or session.
UBUS_NOT_FOUND: Final = 4
UBUS_TIMEOUT: Final = 10.0  # seconds; rpcd and netifd answer in milliseconds
_MAX_OUTPUT: Final = 1024 * 1024  # an interface dump is a few KiB per interface
_ERRORS: Final = (RuntimeError, OSError, ValueError, TypeError)
_LOCK: Final = threading.Lock()

#: A ubus bindings module, None for the command, "auto" to use what is installed.
Bindings = ModuleType | None | Literal["auto"]


class UbusError(Exception):
    """ubus could not be asked, or said no (``not_found`` for an unknown
    object or session)."""

    def __init__(self, message: str, *, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


def _installed_bindings() -> ModuleType | None:
    module = sys.modules.get("ubus")
    if module is not None:
        return module
    if importlib.util.find_spec("ubus") is None:
        return None
    return importlib.import_module("ubus")


def _via_bindings(module: ModuleType, obj: str, method: str, args: Mapping[str, Any],
                  socket: str | None) -> dict[str, Any]:
    with _LOCK:
        try:
            if socket is None:
                module.connect()
            else:
                module.connect(socket)
        except _ERRORS as exc:
            raise UbusError(f"ubus connect failed: {shown(str(exc))}") from None
        try:
            reply = module.call(obj, method, dict(args))
        except _ERRORS as exc:
            text = str(exc)
            raise UbusError(f"ubus call {obj} {method} failed: {shown(text)}",
                            not_found="not found" in text.lower()) from None
        finally:
            try:
                module.disconnect()
            except _ERRORS:
                pass  # already closed: nothing to release
    if isinstance(reply, list):
        if not reply:
            raise UbusError(f"ubus call {obj} {method}: no reply", not_found=True)
        reply = reply[0]
    if not isinstance(reply, dict):
        raise UbusError(f"ubus call {obj} {method}: the reply is not an object")
    return reply


def _via_command(command: str, obj: str, method: str, args: Mapping[str, Any],
                 socket: str | None, timeout: float) -> dict[str, Any]:
    argv = [command]
    if socket is not None:
        argv += ["-s", socket]
    argv += ["call", obj, method, json.dumps(dict(args), separators=(",", ":"))]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise UbusError(f"no '{shown(command)}' command") from None
    except subprocess.TimeoutExpired:
        raise UbusError(f"ubus did not answer in {timeout:g} s") from None
    except OSError as exc:
        raise UbusError(f"cannot run ubus: {shown(str(exc))}") from None
    if done.returncode == UBUS_NOT_FOUND:
        raise UbusError(f"ubus call {obj} {method}: not found", not_found=True)
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        tail = f": {shown(said[-1])}" if said else ""
        raise UbusError(f"ubus exited {done.returncode}{tail}")
    try:
        reply = json.loads(done.stdout[:_MAX_OUTPUT])
    except ValueError:
        raise UbusError("ubus printed no JSON") from None
    if not isinstance(reply, dict):
        raise UbusError(f"ubus call {obj} {method}: the reply is not an object")
    return reply


def ubus_call(obj: str, method: str, args: Mapping[str, Any], *, socket: str | None = None,
              command: str = "ubus", timeout: float = UBUS_TIMEOUT,
              bindings: Bindings = "auto") -> dict[str, Any]:
    """Call ``obj`` ``method`` with ``args`` and return the reply object.

    Args:
        obj: the ubus object, e.g. ``session``.
        method: its method, e.g. ``access``.
        args: the call's arguments (JSON-serialisable).
        socket: the ubus socket; None lets the client use its default.
        command: the ubus command, used when there are no bindings.
        timeout: seconds to wait for the command.
        bindings: the python ``ubus`` module, ``"auto"`` to import it when
            installed, None to force the command.

    Raises:
        UbusError: no answer, an error status, or a reply that is not a JSON
            object.
    """
    module = _installed_bindings() if bindings == "auto" else bindings
    if isinstance(module, ModuleType):
        return _via_bindings(module, obj, method, args, socket)
    return _via_command(command, obj, method, args, socket, timeout)
