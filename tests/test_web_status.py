# The status panel's sources (web/status.py, web/netifd.py): the daemon from
# its pid file and /proc, the sniffed device, the grants through an injected
# firewall, and netifd's interface dump.

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from fwknopd_uci.firewall import ActiveGrant, FirewallError
from fwknopd_uci.openwrt.uci import parse
from fwknopd_uci.openwrt.wan import WanStatus
from fwknopd_uci.web.netifd import list_networks, networks_from_dump
from fwknopd_uci.web.status import SystemStatus

DATA = Path(__file__).resolve().parent / "data"
ENABLED = "config global\n\toption uci_enabled '1'\n"
GRANT = ActiveGrant(IPv4Address("203.0.113.9"), "tcp", 22, 17)


class FakeLister:
    def __init__(self, grants: list[ActiveGrant] | None = None, fail: bool = False) -> None:
        self.grants = grants or []
        self.fail = fail
        self.closed = False
        self.made: tuple[object, ...] = ()

    def list_grants(self) -> list[ActiveGrant]:
        if self.fail:
            raise FirewallError("nftables set fwknopd_allow4 not found")
        return self.grants

    def close(self) -> None:
        self.closed = True


def fake_proc(tmp_path: Path, pid: int, argv: list[str]) -> Path:
    proc = tmp_path / "proc"
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    return proc


def pid_file(root: Path, pid: int, path: str = "var/run/fwknop/fwknopd.pid") -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"{pid}\n")


def test_web_status_running_daemon_and_its_device(tmp_path: Path) -> None:
    root = tmp_path / "root"
    pid_file(root, 321)
    proc = fake_proc(tmp_path, 321, ["/usr/bin/python3", "/usr/sbin/fwknopd", "--foreground",
                                     "-i", "pppoe-wan", "-c", "/var/etc/fwknop/fwknopd.conf"])
    lister = FakeLister([GRANT])
    made: list[tuple[object, ...]] = []

    def factory(table: tuple[str, str], chain: str, set_name: str) -> FakeLister:
        made.append((table, chain, set_name))
        return lister

    status = SystemStatus(root, firewall=factory, proc=proc).status(parse(ENABLED))
    assert status.running and status.pid == 321 and status.device == "pppoe-wan"
    assert status.grants == (GRANT,) and lister.closed
    assert made == [(("inet", "fw4"), "input", "fwknopd_allow4")]


def test_web_status_uses_the_configured_pid_file_and_nft_names(tmp_path: Path) -> None:
    root = tmp_path / "root"
    pid_file(root, 77, "tmp/fw/fwknopd.pid")
    proc = fake_proc(tmp_path, 77, ["fwknopd", "--interface=eth1"])
    made: list[tuple[object, ...]] = []

    def factory(table: tuple[str, str], chain: str, set_name: str) -> FakeLister:
        made.append((table, chain, set_name))
        return FakeLister()

    pkg = parse(ENABLED + "config config\n\toption FWKNOP_RUN_DIR '/tmp/fw'\n"
                "\toption NFT_TABLE 'ip filter'\n\toption NFT_SET 'knock'\n"
                "\toption NFT_CHAIN 'bad name!'\n")
    status = SystemStatus(root, firewall=factory, proc=proc).status(pkg)
    assert status.running and status.device == "eth1" and status.grants == ()
    assert made == [(("ip", "filter"), "input", "knock")]  # an invalid name is not used


@pytest.mark.parametrize("content", [None, "", "abc\n", "999\n", "12345678901234\n"])
def test_web_status_not_running(tmp_path: Path, content: str | None) -> None:
    root = tmp_path / "root"
    if content is not None:
        target = root / "var/run/fwknop/fwknopd.pid"
        target.parent.mkdir(parents=True)
        target.write_text(content)
    proc = fake_proc(tmp_path, 999, ["/bin/sh", "-c", "sleep 100"])  # a reused pid
    status = SystemStatus(root, firewall=None, proc=proc,
                          resolve=lambda n: WanStatus(n, "up", "wan")).status(parse(ENABLED))
    assert not status.running and status.pid is None
    assert status.device == "wan" and "not running" in status.device_note
    assert status.grants is None and status.grants_note


def test_web_status_expected_device_follows_the_init_script(tmp_path: Path) -> None:
    asked: list[str] = []

    def resolve(network: str) -> WanStatus:
        asked.append(network)
        return WanStatus(network, "pending")

    source = SystemStatus(tmp_path, firewall=None, resolve=resolve)
    pcap = source.status(parse((DATA / "openwrt" / "pcap-intf.uci").read_text()))
    assert pcap.device == "eth1" and asked == []
    wan = source.status(parse((DATA / "openwrt" / "network-wan.uci").read_text()))
    assert wan.device is None and "pending" in wan.device_note and asked == ["wan"]
    off = source.status(parse("config global\n"))
    assert off.device is None and "UCI control is off" in off.device_note


def test_web_status_firewall_errors_are_shown_not_raised(tmp_path: Path) -> None:
    lister = FakeLister(fail=True)
    status = SystemStatus(tmp_path, firewall=lambda *a: lister).status(parse(ENABLED))
    assert status.grants is None and "not found" in status.grants_note and lister.closed

    def broken(*args: object) -> FakeLister:
        raise FirewallError("no nft")

    assert SystemStatus(tmp_path, firewall=broken).status(parse(ENABLED)).grants_note == "no nft"


DUMP = {"interface": [
    {"interface": "lan", "up": True, "l3_device": "br-lan", "route": []},
    {"interface": "loopback", "up": True},
    {"interface": "wan", "up": False, "pending": True},
    {"interface": "wwan", "up": True, "l3_device": "wwan0",
     "route": [{"target": "0.0.0.0", "mask": 0, "nexthop": "192.0.2.1"}]},
    {"interface": "bad name", "up": True},
    {"interface": "lan"},
    "junk",
]}


def test_web_status_networks_from_netifd_dump() -> None:
    networks = networks_from_dump(DUMP)
    assert networks is not None
    assert networks.names == ("lan", "wan", "wwan")
    assert networks.wan == "wwan" and networks.up == {"lan", "wwan"}
    fallback = networks_from_dump({"interface": [{"interface": "wan", "up": False}]})
    assert fallback is not None and fallback.wan == "wan"
    networks = networks_from_dump({"interface": [{"interface": "lan"}]})
    assert networks.wan is None  # type: ignore[union-attr]
    assert networks_from_dump({}) is None


def test_web_status_list_networks_through_a_stand_in_ubus(tmp_path: Path) -> None:
    command = tmp_path / "ubus"
    command.write_text("#!/bin/sh\n[ \"$4\" = network.interface ] && [ \"$5\" = dump ] || "
                       f"exit 4\ncat <<'EOF'\n{json.dumps(DUMP)}\nEOF\n")
    command.chmod(0o755)
    networks = list_networks(str(tmp_path / "ubus.sock"), command=str(command), bindings=None)
    assert networks is not None and networks.wan == "wwan"
    assert list_networks(command=str(tmp_path / "missing"), bindings=None) is None
