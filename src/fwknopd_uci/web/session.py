# Who may see and change the settings: the router's LuCI (rpcd) sessions.
#
# Purpose: the page is not a LuCI view, so LuCI's own login does not guard it.
# Every request carries the rpcd session id of the LuCI user (LuCI's view
# posts L.env.sessionid to /login once; the page keeps it in an HttpOnly
# cookie) and is checked against rpcd's ACLs with `session access`, scope
# `access-group`, object `luci-app-fwknopd`, function `read` or `write`
# (openwrt.md 7). rpcd answers false or "not found" for an expired or
# unknown session, so expiry and logout in LuCI take effect at once.
#
# Strategy: one small interface, SessionChecker.access(sid, group, function),
# with two implementations: RpcdSessions asks rpcd over ubus (bindings or the
# ubus command, see ubus.py); StandinSessions reads a JSON file in place of
# rpcd, for the standalone server and the tests.
#
# Invariants: a session id that is not 32 hex characters (rpcd's format) is
# refused before any lookup, so nothing else ever reaches ubus or a file
# lookup. No message or log line contains a session id.

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

from ..openwrt.ubus import UBUS_TIMEOUT, Bindings, UbusError, ubus_call

__all__ = [
    "ACL_GROUP",
    "FUNCTIONS",
    "MAX_STANDIN_BYTES",
    "RpcdSessions",
    "SessionChecker",
    "StandinSessions",
    "valid_sid",
]

log = logging.getLogger(__name__)

#: The rpcd ACL group of the LuCI app (luci/acl.d); read = view, write = save.
ACL_GROUP: Final = "luci-app-fwknopd"
FUNCTIONS: Final = frozenset({"read", "write"})
#: A bound on the stand-in file: a few sessions are a few hundred bytes.
MAX_STANDIN_BYTES: Final = 1024 * 1024
_SID: Final = re.compile(r"[0-9A-Fa-f]{32}")


def valid_sid(sid: object) -> bool:
    """True for a string in rpcd's session id format: 32 hex characters."""
    return isinstance(sid, str) and _SID.fullmatch(sid) is not None


class SessionChecker(Protocol):
    """What the page asks about a session."""

    def access(self, sid: str, group: str, function: str) -> bool:
        """True if session ``sid`` is valid now and its ACLs grant ``function``
        (``read`` or ``write``) of access group ``group``."""
        ...


class RpcdSessions:
    """The router's rpcd, asked with ``ubus call session access``.

    Args:
        socket: the ubus socket, None for the client's default.
        command: the ubus command, used when the python bindings are not
            installed.
        timeout: seconds to wait for the command.
        bindings: the python ``ubus`` module, ``"auto"`` or None (see
            ubus.ubus_call).
    """

    def __init__(self, socket: str | None = None, *, command: str = "ubus",
                 timeout: float = UBUS_TIMEOUT, bindings: Bindings = "auto") -> None:
        self._socket = socket
        self._command = command
        self._timeout = timeout
        self._bindings = bindings

    def access(self, sid: str, group: str, function: str) -> bool:
        if not valid_sid(sid) or function not in FUNCTIONS:
            return False
        args = {"ubus_rpc_session": sid, "scope": "access-group", "object": group,
                "function": function}
        try:
            reply = ubus_call("session", "access", args, socket=self._socket,
                              command=self._command, timeout=self._timeout,
                              bindings=self._bindings)
        except UbusError as exc:
            if not exc.not_found:
                log.warning("session check failed: %s", exc)
            return False
        return reply.get("access") is True


class StandinSessions:
    """Stands in for rpcd's ``session access`` at the boundary openwrt.md 7
    documents, for the standalone server and the tests (never on a router).

    The file holds ``{"sessions": {"<sid>": {"expires": <epoch seconds>,
    "access": {"<group>": ["read", "write"]}}}}``; it is read on every check,
    so a test can expire or change a session while the server runs. A
    missing, unreadable or malformed file refuses every session.

    Args:
        path: the JSON file (``<root>/var/run/rpcd-standin.json``).
        clock: the current time in epoch seconds.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock

    def access(self, sid: str, group: str, function: str) -> bool:
        if not valid_sid(sid) or function not in FUNCTIONS:
            return False
        try:
            with open(self._path, "rb") as handle:
                data = handle.read(MAX_STANDIN_BYTES + 1)
        except OSError:
            return False
        if len(data) > MAX_STANDIN_BYTES:
            return False
        try:
            store = json.loads(data)
        except ValueError:
            return False
        sessions = store.get("sessions") if isinstance(store, dict) else None
        entry = sessions.get(sid) if isinstance(sessions, dict) else None
        if not isinstance(entry, dict):
            return False
        expires = entry.get("expires")
        if isinstance(expires, bool) or not isinstance(expires, int | float) \
                or not math.isfinite(expires) or expires <= self._clock():
            return False
        grants = entry.get("access")
        allowed = grants.get(group) if isinstance(grants, dict) else None
        return isinstance(allowed, list) and function in allowed
