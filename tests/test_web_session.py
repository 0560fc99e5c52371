# LuCI session checks (web/session.py, openwrt/ubus.py): the stand-in store, and
# rpcd's `session access` through fake ubus bindings and a stand-in ubus
# command that records its argv (never a real ubus socket).

from __future__ import annotations

import json
import stat
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from fwknopd_uci.web.session import RpcdSessions, StandinSessions, valid_sid

SID = "0123456789abcdef0123456789abcdef"
NOW = 1_700_000_000.0


@pytest.mark.parametrize(("sid", "ok"), [
    (SID, True), (SID.upper(), True), ("0" * 32, True), (SID[:-1], False), (SID + "0", False),
    ("g" * 32, False), ("", False), (None, False), (32, False), (" " + SID[1:], False),
    (SID[:-1] + "\n", False), ("０" * 32, False),
])
def test_web_session_id_format_is_rpcds(sid: object, ok: bool) -> None:
    assert valid_sid(sid) is ok


def standin(tmp_path: Path, sessions: object) -> StandinSessions:
    path = tmp_path / "rpcd-standin.json"
    path.write_text(json.dumps({"sessions": sessions}))
    return StandinSessions(path, clock=lambda: NOW)


def test_web_session_standin_grants_what_the_file_says(tmp_path: Path) -> None:
    store = standin(tmp_path, {SID: {"expires": NOW + 10,
                                     "access": {"luci-app-fwknopd": ["read"]}}})
    assert store.access(SID, "luci-app-fwknopd", "read")
    assert not store.access(SID, "luci-app-fwknopd", "write")
    assert not store.access(SID, "luci-app-other", "read")
    assert not store.access("f" * 32, "luci-app-fwknopd", "read")


@pytest.mark.parametrize("entry", [
    {"expires": NOW, "access": {"luci-app-fwknopd": ["read"]}},  # expires now
    {"expires": NOW - 1, "access": {"luci-app-fwknopd": ["read"]}},
    {"expires": "never", "access": {"luci-app-fwknopd": ["read"]}},
    {"expires": True, "access": {"luci-app-fwknopd": ["read"]}},
    {"access": {"luci-app-fwknopd": ["read"]}},
    {"expires": NOW + 10, "access": {"luci-app-fwknopd": "read"}},
    {"expires": NOW + 10, "access": ["luci-app-fwknopd"]},
    {"expires": NOW + 10},
    "read",
])
def test_web_session_standin_refuses_expired_and_malformed(tmp_path: Path, entry: Any) -> None:
    assert not standin(tmp_path, {SID: entry}).access(SID, "luci-app-fwknopd", "read")


@pytest.mark.parametrize("content", ["", "{", "[]", '{"sessions": []}', "x" * (2 << 20)])
def test_web_session_standin_refuses_a_broken_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "rpcd-standin.json"
    path.write_text(content)
    assert not StandinSessions(path).access(SID, "luci-app-fwknopd", "read")
    assert not StandinSessions(tmp_path / "missing.json").access(SID, "luci-app-fwknopd",
                                                                "read")


def test_web_session_standin_refuses_a_bad_id_before_reading(tmp_path: Path) -> None:
    store = StandinSessions(tmp_path / "not-there" / "x.json")
    sessions = {"../../etc": {"expires": NOW + 10, "access": {"g": ["read"]}}}
    (tmp_path / "s.json").write_text(json.dumps({"sessions": sessions}))
    assert not StandinSessions(tmp_path / "s.json", clock=lambda: NOW).access("../../etc", "g",
                                                                             "read")
    assert not store.access(SID, "g", "delete")


class FakeUbus(types.ModuleType):
    """The python ubus bindings' surface: connect, call, disconnect."""

    def __init__(self, reply: Any = None, error: Exception | None = None) -> None:
        super().__init__("ubus")
        self.reply = reply if reply is not None else [{"access": True}]
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    def connect(self, *args: Any) -> None:
        self.calls.append(("connect", *args))

    def call(self, *args: Any) -> Any:
        self.calls.append(("call", *args))
        if self.error is not None:
            raise self.error
        return self.reply

    def disconnect(self) -> None:
        self.calls.append(("disconnect",))


def test_web_session_rpcd_asks_session_access_through_the_bindings() -> None:
    ubus = FakeUbus()
    sessions = RpcdSessions("/tmp/test.sock", bindings=ubus)
    assert sessions.access(SID, "luci-app-fwknopd", "write")
    assert ubus.calls == [
        ("connect", "/tmp/test.sock"),
        ("call", "session", "access", {"ubus_rpc_session": SID, "scope": "access-group",
                                       "object": "luci-app-fwknopd", "function": "write"}),
        ("disconnect",)]


@pytest.mark.parametrize(("reply", "error"), [
    ([{"access": False}], None), ([], None), ([{}], None), ([{"access": "true"}], None),
    ("yes", None), ([{"access": True}], RuntimeError("Failed to call: Not found")),
    ([{"access": True}], RuntimeError("Failed to call: Connection failed")),
])
def test_web_session_rpcd_refuses_unless_access_is_true(reply: Any,
                                                        error: Exception | None) -> None:
    ubus = FakeUbus(reply, error)
    assert not RpcdSessions(bindings=ubus).access(SID, "luci-app-fwknopd", "read")
    assert ubus.calls[-1] == ("disconnect",)


def test_web_session_rpcd_never_asks_about_a_bad_id() -> None:
    ubus = FakeUbus()
    sessions = RpcdSessions(bindings=ubus)
    for sid in ("x" * 32, SID + "'", "", SID[:31]):
        assert not sessions.access(sid, "luci-app-fwknopd", "read")
    assert not sessions.access(SID, "luci-app-fwknopd", "admin")
    assert ubus.calls == []


def stand_in_ubus(tmp_path: Path, *, code: int = 0, output: str = '{"access": true}') -> Path:
    """A `ubus` command that records its argv and answers like rpcd."""
    script = tmp_path / "ubus"
    log = tmp_path / "ubus.log"
    script.write_text(f"#!{sys.executable}\n"
                      "import json, sys\n"
                      f"with open({str(log)!r}, 'a') as f:\n"
                      "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
                      f"sys.stdout.write({output!r})\n"
                      f"sys.exit({code})\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def recorded(tmp_path: Path) -> list[list[str]]:
    log = tmp_path / "ubus.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_web_session_rpcd_falls_back_to_the_ubus_command(tmp_path: Path) -> None:
    command = stand_in_ubus(tmp_path)
    sessions = RpcdSessions(command=str(command), bindings=None)
    assert sessions.access(SID, "luci-app-fwknopd", "read")
    argv = recorded(tmp_path)
    assert argv == [["call", "session", "access", json.dumps(
        {"ubus_rpc_session": SID, "scope": "access-group", "object": "luci-app-fwknopd",
         "function": "read"}, separators=(",", ":"))]]
    with_socket = RpcdSessions("/tmp/s.sock", command=str(command), bindings=None)
    assert with_socket.access(SID, "luci-app-fwknopd", "read")
    assert recorded(tmp_path)[1][:3] == ["-s", "/tmp/s.sock", "call"]


@pytest.mark.parametrize(("code", "output"), [
    (4, ""), (0, '{"access": false}'), (0, "not json"), (0, "[true]"), (1, '{"access": true}'),
])
def test_web_session_rpcd_command_refusals(tmp_path: Path, code: int, output: str) -> None:
    command = stand_in_ubus(tmp_path, code=code, output=output)
    assert not RpcdSessions(command=str(command), bindings=None).access(
        SID, "luci-app-fwknopd", "read")


def test_web_session_rpcd_without_any_ubus_refuses(tmp_path: Path) -> None:
    sessions = RpcdSessions(command=str(tmp_path / "no-ubus"), bindings=None)
    assert not sessions.access(SID, "luci-app-fwknopd", "read")


def test_web_session_rpcd_auto_uses_installed_bindings(monkeypatch: pytest.MonkeyPatch) -> None:
    ubus = FakeUbus()
    monkeypatch.setitem(sys.modules, "ubus", ubus)
    assert RpcdSessions().access(SID, "luci-app-fwknopd", "read")
    assert ubus.calls[0] == ("connect",)
