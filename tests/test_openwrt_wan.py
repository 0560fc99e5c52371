# WAN detection (openwrt/wan.py): netifd's status replies (openwrt.md 6),
# through the ubus command (the stand-in tests/standins/ubus) and through the
# python bindings (a fake `ubus` module injected into sys.modules).

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from fwknopd_uci.openwrt.wan import interpret_status, resolve_network

TESTS = Path(__file__).resolve().parent
STANDIN = TESTS / "standins" / "ubus"
REPLIES = TESTS / "data" / "openwrt" / "ubus"


def reply(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REPLIES / name).read_text())
    return data


@pytest.fixture
def socket(tmp_path: Path) -> Path:
    """A scratch ubus socket path: the stand-in reads replies next to it."""
    run = tmp_path / "var" / "run" / "ubus"
    run.mkdir(parents=True)
    return run / "ubus.sock"


def serve(socket: Path, network: str, name: str) -> None:
    shutil.copyfile(REPLIES / name, socket.parent / f"network.interface.{network}.json")


@pytest.mark.parametrize(("name", "state", "device"), [
    ("wan-dhcp.json", "up", "wan"),
    ("wan-pppoe.json", "up", "pppoe-wan"),
    ("wan-pppoe-pending.json", "pending", None),
    ("wan-down.json", "down", None),
])
def test_interpret_status_fixtures(name: str, state: str, device: str | None) -> None:
    status = interpret_status("wan", reply(name))
    assert (status.state, status.device) == (state, device)


def test_interpret_status_pppoe_is_l3_device_not_physdev() -> None:
    data = reply("wan-pppoe.json")
    assert data["device"] == "wan.7"
    assert interpret_status("wan", data).device == "pppoe-wan"


def test_interpret_status_up_without_l3_device() -> None:
    status = interpret_status("wan", {"up": True, "pending": False})
    assert status.state == "unavailable" and status.device is None


@pytest.mark.parametrize(("name", "state", "device"), [
    ("wan-dhcp.json", "up", "wan"),
    ("wan-pppoe.json", "up", "pppoe-wan"),
    ("wan-pppoe-pending.json", "pending", None),
    ("wan-down.json", "down", None),
])
def test_resolve_network_command(socket: Path, name: str, state: str,
                                 device: str | None) -> None:
    serve(socket, "wan", name)
    status = resolve_network("wan", str(socket), command=str(STANDIN), bindings=None)
    assert (status.state, status.device) == (state, device)


def test_resolve_network_command_missing_interface(socket: Path) -> None:
    status = resolve_network("wan", str(socket), command=str(STANDIN), bindings=None)
    assert status.state == "missing" and status.device is None
    assert "no interface 'wan'" in status.reason


def test_resolve_network_command_other_network(socket: Path) -> None:
    serve(socket, "wwan", "wan-dhcp.json")
    assert resolve_network("wwan", str(socket), command=str(STANDIN), bindings=None).device \
        == "wan"
    assert resolve_network("wan", str(socket), command=str(STANDIN), bindings=None).state \
        == "missing"


def test_resolve_network_no_ubus_command(socket: Path) -> None:
    status = resolve_network("wan", str(socket), command=str(socket.parent / "no-ubus"),
                             bindings=None)
    assert status.state == "unavailable" and "no '" in status.detail


def test_resolve_network_command_failure_and_garbage(socket: Path, tmp_path: Path) -> None:
    (socket.parent / "network.interface.wan.json").write_text("not json")
    status = resolve_network("wan", str(socket), command=str(STANDIN), bindings=None)
    assert status.state == "unavailable" and "JSON" in status.detail
    failing = tmp_path / "failing-ubus"
    failing.write_text("#!/bin/sh\necho 'Failed to connect to ubus' >&2\nexit 10\n")
    failing.chmod(0o755)
    status = resolve_network("wan", str(socket), command=str(failing), bindings=None)
    assert status.state == "unavailable"
    assert status.detail == "ubus exited 10: Failed to connect to ubus"


def test_resolve_network_command_timeout(socket: Path, tmp_path: Path) -> None:
    slow = tmp_path / "slow-ubus"
    slow.write_text("#!/bin/sh\nexec sleep 5\n")
    slow.chmod(0o755)
    status = resolve_network("wan", str(socket), command=str(slow), bindings=None, timeout=0.2)
    assert status.state == "unavailable" and "did not answer" in status.detail


@pytest.mark.parametrize("network", ["", "wan/../x", "wan lan", "-s", "wan;reboot"])
def test_resolve_network_refuses_odd_names(network: str) -> None:
    status = resolve_network(network, None, command="/nonexistent/ubus", bindings=None)
    assert status.state == "unavailable" and "not a logical network name" in status.detail


class FakeBindings(types.ModuleType):
    """A stand-in for the python `ubus` module: connect / call / disconnect."""

    def __init__(self, replies: dict[str, Any], *, connect_error: Exception | None = None,
                 ) -> None:
        super().__init__("ubus")
        self.replies = replies
        self.connect_error = connect_error
        self.log: list[tuple[Any, ...]] = []

    def connect(self, socket: str | None = None) -> bool:
        self.log.append(("connect", socket))
        if self.connect_error is not None:
            raise self.connect_error
        return True

    def call(self, obj: str, method: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        self.log.append(("call", obj, method, args))
        if obj not in self.replies:
            raise RuntimeError("Failed to call method: Not found")
        result: list[dict[str, Any]] = self.replies[obj]
        return result

    def disconnect(self) -> None:
        self.log.append(("disconnect",))


@pytest.fixture
def fake_ubus(monkeypatch: pytest.MonkeyPatch) -> FakeBindings:
    module = FakeBindings({"network.interface.wan": [reply("wan-pppoe.json")],
                           "network.interface.wan6": []})
    monkeypatch.setitem(sys.modules, "ubus", module)
    return module


def test_resolve_network_bindings_when_importable(fake_ubus: FakeBindings) -> None:
    status = resolve_network("wan", "/scratch/ubus.sock", command="/nonexistent/ubus")
    assert (status.state, status.device) == ("up", "pppoe-wan")
    assert fake_ubus.log == [("connect", "/scratch/ubus.sock"),
                             ("call", "network.interface.wan", "status", {}),
                             ("disconnect",)]


def test_resolve_network_bindings_not_found_and_empty(fake_ubus: FakeBindings) -> None:
    assert resolve_network("lan", "/scratch/ubus.sock").state == "missing"
    assert resolve_network("wan6", "/scratch/ubus.sock").state == "missing"
    assert fake_ubus.log.count(("disconnect",)) == 2


def test_resolve_network_bindings_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    module = FakeBindings({"network.interface.wan": [reply("wan-pppoe-pending.json")]})
    monkeypatch.setitem(sys.modules, "ubus", module)
    assert resolve_network("wan", "/scratch/ubus.sock").state == "pending"


def test_resolve_network_bindings_cannot_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    module = FakeBindings({}, connect_error=OSError(2, "No such file or directory"))
    monkeypatch.setitem(sys.modules, "ubus", module)
    status = resolve_network("wan", "/scratch/ubus.sock")
    assert status.state == "unavailable" and "connect failed" in status.detail


def test_resolve_network_default_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    module = FakeBindings({"network.interface.wan": [reply("wan-dhcp.json")]})
    monkeypatch.setitem(sys.modules, "ubus", module)
    assert resolve_network("wan").device == "wan"
    assert module.log[0] == ("connect", None)


def test_standin_speaks_the_cli_format(socket: Path) -> None:
    """The stand-in parses `-s SOCKET call OBJECT METHOD [JSON]` like ubus."""
    serve(socket, "wan", "wan-dhcp.json")
    done = subprocess.run([str(STANDIN), "-s", str(socket), "call", "network.interface.wan",
                           "status", "{}"], capture_output=True, text=True, check=False,
                          timeout=30)
    assert done.returncode == 0 and json.loads(done.stdout)["l3_device"] == "wan"
    done = subprocess.run([str(STANDIN), "-s", str(socket), "call", "network.interface.lan",
                           "status"], capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode == 4
    done = subprocess.run([str(STANDIN), "call", "network.interface.wan", "status"],
                          capture_output=True, text=True, check=False, timeout=30)
    assert done.returncode != 0  # never without a scratch socket
