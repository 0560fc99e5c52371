# End to end, as root: the project's fwknopd sniffing (or in -U mode) inside
# a server namespace with a default-drop firewall4-shaped ruleset, the real
# fwknop 2.6.10 client knocking from a client namespace over a veth pair,
# and real TCP connects deciding whether the port is open.

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from netns import Namespace, VethPair, requires_root, veth_pair

pytestmark = [pytest.mark.root, requires_root,
              pytest.mark.skipif(shutil.which("fwknop") is None,
                                 reason="the real fwknop client (apt fwknop-client) is missing"),
              pytest.mark.skipif(shutil.which("nft") is None, reason="nft is missing")]

TESTS = Path(__file__).resolve().parent
PROBE = str(TESTS / "probe.py")
RULESET = TESTS / "data" / "fw4-ruleset.nft"
KEY = "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc="
HMAC = ("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1"
        "lqQXuQ==")
TIMEOUT = 3  # FW_ACCESS_TIMEOUT of the test stanza
OPEN_WAIT = 3.0  # a knock must open the port well within this


@dataclass
class Lab:
    pair: VethPair
    tmp: Path
    udp_mode: bool
    daemon: subprocess.Popen[bytes] | None = None

    @property
    def srv(self) -> Namespace:
        return self.pair.server

    @property
    def cli(self) -> Namespace:
        return self.pair.client

    def fwknopd_argv(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "fwknopd_uci.server.cli", "-c",
                str(self.tmp / "fwknopd.conf"), "-a", str(self.tmp / "access.conf"),
                "-d", str(self.tmp / "digest.cache"), "-p", str(self.tmp / "fwknopd.pid"),
                *extra]

    def start_daemon(self) -> None:
        args = self.fwknopd_argv("-f", "-v", "-i", self.pair.server_if)
        if self.udp_mode:
            args.append("-U")
        ready = "Starting fwknopd main event loop."
        before = self.log().count(ready) if (self.tmp / "fwknopd.log").exists() else 0
        with open(self.tmp / "fwknopd.log", "ab") as log:
            self.daemon = self.srv.popen(*args, stdout=log, stderr=subprocess.STDOUT)
        self.wait_for_log(ready, count=before + 1)

    def stop_daemon(self) -> None:
        if self.daemon is not None:
            self.daemon.terminate()
            self.daemon.wait(timeout=10)
            self.daemon = None

    def log(self) -> str:
        return (self.tmp / "fwknopd.log").read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 15.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return
            if self.daemon is not None and self.daemon.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen in the daemon log:\n{self.log()}")

    def knock(self, *extra: str, port: str = "tcp/22", keys: tuple[str, str] = (KEY, HMAC),
              save: Path | None = None) -> None:
        argv = ["env", f"HOME={self.tmp}", "fwknop", "-A", port, "-a", self.pair.client_ip,
                "-D", self.pair.server_ip, "--key-base64-rijndael", keys[0],
                "--key-base64-hmac", keys[1], "--use-hmac", "--no-rc-file", "--no-save-args",
                *extra]
        if save is not None:
            argv += ["-B", str(save)]
        self.cli.run(*argv)

    def can_connect(self, port: int = 22, source: str | None = None) -> bool:
        argv = [sys.executable, PROBE, "connect", self.pair.server_ip, str(port)]
        if source:
            argv.append(source)
        return self.cli.run(*argv, check=False).returncode == 0

    def wait_open(self, timeout: float = OPEN_WAIT) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.can_connect():
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"port 22 did not open within {timeout} s:\n{self.log()}")

    def wait_closed(self, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.can_connect():
                return time.monotonic() - start
            time.sleep(0.25)
        raise AssertionError(f"port 22 still open after {timeout} s")


@pytest.fixture(params=["sniff", "udp"])
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lab]:
    with veth_pair(tag="e2e") as pair:
        pair.client.run("ip", "addr", "add", "10.201.0.3/24", "dev", pair.client_if)
        pair.server.run("nft", "-f", str(RULESET))
        if request.param == "udp":
            # A UDP server needs its port open, as on a router (a fw4 rule
            # "Allow-SPA"); a sniffer sees packets before the firewall.
            pair.server.run("nft", "insert", "rule", "inet", "fw4", "input_wan", "udp",
                            "dport", "62201", "accept")
        listener = pair.server.popen(sys.executable, PROBE, "listen", "22", "23",
                                     stdout=subprocess.PIPE)
        assert listener.stdout is not None and listener.stdout.readline() == b"listening\n"
        (tmp_path / "fwknopd.conf").write_text(
            "PCAP_FILTER udp port 62201;\nENABLE_SPA_PACKET_AGING Y;\n")
        (tmp_path / "access.conf").write_text(
            f"SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HMAC}\n"
            f"OPEN_PORTS tcp/22, tcp/23\nFW_ACCESS_TIMEOUT {TIMEOUT}\n")
        os.chmod(tmp_path, 0o700)
        lab = Lab(pair, tmp_path, request.param == "udp")
        try:
            lab.start_daemon()
            yield lab
        finally:
            lab.stop_daemon()
            listener.kill()
            listener.wait(timeout=10)


def test_e2e_knock_opens_exactly_the_granted_port_for_its_timeout(lab: Lab) -> None:
    assert not lab.can_connect(22), "port 22 must be closed before a knock"
    lab.knock()
    lab.wait_open()
    assert not lab.can_connect(23), "only the requested port opens"
    assert not lab.can_connect(22, source="10.201.0.3"), "only the granted source"
    lab.wait_for_log("Added access rule")
    listing = lab.srv.run(*lab.fwknopd_argv("--fw-list")).stdout
    assert f"{lab.pair.client_ip} -> tcp/22, expires in" in listing
    closed_after = lab.wait_closed(timeout=TIMEOUT + 5)
    assert not lab.can_connect(22)
    assert closed_after > 0.5, "closed far too early"


def test_e2e_replay_and_wrong_key_open_nothing(lab: Lab) -> None:
    saved = lab.tmp / "packet.txt"
    lab.knock(save=saved)
    lab.wait_open()
    lab.wait_closed(timeout=TIMEOUT + 5)
    send = [sys.executable, PROBE, "send", lab.pair.server_ip, "62201", str(saved)]
    lab.cli.run(*send)
    lab.wait_for_log("Replay detected from source IP: 10.201.0.2")
    assert not lab.can_connect(22)
    # The replay cache survives a restart.
    lab.stop_daemon()
    lab.start_daemon()
    lab.cli.run(*send)
    lab.wait_for_log("Replay detected from source IP: 10.201.0.2", count=2)
    assert not lab.can_connect(22)
    # A knock with the wrong keys opens nothing.
    other = ("A" * 43 + "=", "B" * 86 + "==")
    lab.knock(keys=other)
    lab.wait_for_log("Non-corresponding HMAC for this stanza")
    time.sleep(0.3)
    assert not lab.can_connect(22)


def test_e2e_fw_flush_closes_every_grant(lab: Lab) -> None:
    lab.knock()
    lab.wait_open()
    result = lab.srv.run(*lab.fwknopd_argv("--fw-flush"))
    assert "Removed every grant" in result.stdout
    assert not lab.can_connect(22)
    assert "(none)" in lab.srv.run(*lab.fwknopd_argv("--fw-list")).stdout


def test_e2e_knock_after_a_garbage_burst_opens_at_once(lab: Lab) -> None:
    lab.cli.run(sys.executable, PROBE, "garbage", lab.pair.server_ip, "62201", "3000",
                timeout=60)
    lab.knock()
    lab.wait_open(timeout=OPEN_WAIT)


def test_e2e_sighup_rereads_config_and_keeps_grants(lab: Lab) -> None:
    import signal

    assert lab.daemon is not None
    access = lab.tmp / "access.conf"
    access.write_text(access.read_text().replace("OPEN_PORTS tcp/22, tcp/23", "OPEN_PORTS tcp/22")
                      .replace(f"FW_ACCESS_TIMEOUT {TIMEOUT}", "FW_ACCESS_TIMEOUT 30"))
    lab.daemon.send_signal(signal.SIGHUP)
    lab.wait_for_log("Got SIGHUP. Re-reading configs.")
    lab.knock(port="tcp/23")
    lab.wait_for_log("One or more requested protocol/ports was denied per access.conf.")
    assert not lab.can_connect(23)
    lab.knock()
    lab.wait_open()
    # A broken edit is refused; the running configuration and the grant stay.
    access.write_text("SOURCE ANY\nKEY __CHANGEME__\n")
    lab.daemon.send_signal(signal.SIGHUP)
    lab.wait_for_log("Reload failed, keeping the running configuration")
    assert lab.can_connect(22), "a reload must not drop grants"
    assert lab.daemon.poll() is None
