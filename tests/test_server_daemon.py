# The daemon shell around the decision: the grant bound, never shortening an
# open grant, the log budget, and what happens when the capture breaks.

from __future__ import annotations

import errno
import logging
import threading
from ipaddress import IPv4Address
from pathlib import Path

from pipeline import Harness, udp_packet
from test_server_decide import NOW, STANZA, knock

from fwknopd_uci.model import CapturedPacket, Grant
from fwknopd_uci.server.grantbook import GrantBook
from fwknopd_uci.server.ratelimit import LogBudget

A = IPv4Address("10.201.0.2")


def test_daemon_grantbook_bounds_and_never_shortens() -> None:
    book = GrantBook(max_active=2)
    first = Grant(A, "tcp", 22, 300)
    assert book.plan(first, 0) == first
    book.record(first, 0)
    shorter = Grant(A, "tcp", 22, 10)
    assert book.plan(shorter, 100) == Grant(A, "tcp", 22, 200)
    book.record(Grant(A, "tcp", 23, 5), 0)
    assert book.plan(Grant(A, "udp", 53, 5), 1) is None  # full
    assert book.plan(Grant(A, "udp", 53, 5), 400) is not None  # after expiry


def test_daemon_second_knock_keeps_the_longer_grant(tmp_path: Path) -> None:
    h = Harness(tmp_path, STANZA + "MAX_FW_TIMEOUT 600\n", now=NOW)
    assert h.send(udp_packet(knock(msg_type=3, client_timeout=600))).granted
    h.now = NOW + 10
    assert h.send(udp_packet(knock(ts=NOW + 10, msg_type=3, client_timeout=5))).granted
    assert [g.timeout for g in h.firewall.grants][-1] == 590


def test_daemon_grant_cap_refuses_with_a_clear_line(tmp_path: Path) -> None:
    h = Harness(tmp_path, STANZA, now=NOW)
    h.daemon.grants = GrantBook(max_active=1)
    assert h.send(udp_packet(knock("10.201.0.7,tcp/22"))).granted
    h.send(udp_packet(knock("10.201.0.8,tcp/22")))
    assert len(h.firewall.grants) == 1
    assert "grants are open, the most this daemon keeps" in h.text()


def test_daemon_log_budget_summarises_a_flood(tmp_path: Path) -> None:
    budget = LogBudget(per_second=2)
    assert [budget.allow(10.1)[0] for _ in range(4)] == [True, True, False, False]
    assert budget.allow(11.0) == (True, 2)
    h = Harness(tmp_path, STANZA, now=NOW)
    for _ in range(100):
        h.send(udp_packet(b"A" * 200))
    h.now = NOW + 1
    h.send(udp_packet(b"A" * 200))
    hmac_lines = [line for line in h.lines(logging.INFO) if "Non-corresponding HMAC" in line]
    assert len(hmac_lines) <= 21
    assert any("were suppressed in the last second" in line for line in h.lines())


class BrokenSource:
    """A capture whose interface went away: readable, then ENETDOWN."""

    def __init__(self) -> None:
        import os

        self.r, self.w = os.pipe()
        os.write(self.w, b"x")
        self.closed = False

    def fileno(self) -> int:
        return self.r

    def recv(self) -> CapturedPacket | None:
        raise OSError(errno.ENETDOWN, "Network is down")

    def close(self) -> None:
        import os

        if not self.closed:
            os.close(self.r)
            os.close(self.w)
            self.closed = True


def test_daemon_exits_nonzero_when_the_interface_goes_down(tmp_path: Path) -> None:
    h = Harness(tmp_path, STANZA, now=NOW)
    status = h.daemon.run(BrokenSource(), lambda rt: BrokenSource())
    assert status == 1
    assert "EXIT_AT_INTF_DOWN is on" in h.text()


def test_daemon_waits_for_the_interface_with_exit_at_intf_down_off(tmp_path: Path) -> None:
    import os
    import signal

    h = Harness(tmp_path, STANZA, "EXIT_AT_INTF_DOWN N;\n", now=NOW)
    reopened = threading.Event()

    class Healthy(BrokenSource):
        def __init__(self) -> None:
            super().__init__()
            os.read(self.r, 1)  # nothing queued
            reopened.set()

    timer = threading.Timer(8.0, lambda: os.kill(os.getpid(), signal.SIGTERM))
    watcher = threading.Thread(target=lambda: reopened.wait(8) and os.kill(
        os.getpid(), signal.SIGTERM), daemon=True)
    timer.start()
    watcher.start()
    try:
        status = h.daemon.run(BrokenSource(), lambda rt: Healthy())
    finally:
        timer.cancel()
    assert status == 0 and reopened.is_set()
    assert "waiting for the interface to come back" in h.text()
    assert "Capture is running again." in h.text()
