# RecordingFirewall: the fake the daemon's tests rely on must behave like the
# real backend where it matters (refresh on re-grant, expiry, flush, close
# keeps grants) and fail on demand like it.

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from fwknopd_uci.firewall import (
    ActiveGrant,
    Firewall,
    FirewallCall,
    FirewallError,
    RecordingFirewall,
)
from fwknopd_uci.model import Grant

A = IPv4Address("192.0.2.1")
B = IPv4Address("192.0.2.2")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_firewall_fake_records_calls_in_order() -> None:
    fw = RecordingFirewall()
    g = Grant(A, "tcp", 22, 30)
    fw.start()
    fw.grant(g)
    fw.flush()
    fw.close()
    assert fw.calls == [FirewallCall("start"), FirewallCall("grant", g), FirewallCall("flush"),
                        FirewallCall("close")]
    assert fw.grants == [g]
    assert isinstance(fw, Firewall)


def test_firewall_fake_expires_and_refreshes_grants() -> None:
    clock = Clock()
    fw = RecordingFirewall(clock=clock)
    fw.grant(Grant(A, "tcp", 22, 10))
    fw.grant(Grant(B, "udp", 53, 3))
    clock.now += 2.5
    assert fw.list_grants() == [ActiveGrant(A, "tcp", 22, 7), ActiveGrant(B, "udp", 53, 0)]
    fw.grant(Grant(A, "tcp", 22, 4))  # a new knock sets the new timeout, shorter here
    clock.now += 1
    assert fw.list_grants() == [ActiveGrant(A, "tcp", 22, 3)]
    clock.now += 3
    assert fw.list_grants() == []


def test_firewall_fake_flush_and_close() -> None:
    fw = RecordingFirewall(clock=Clock())
    fw.grant(Grant(A, "tcp", 22, 10))
    fw.close()
    assert len(fw.list_grants()) == 1  # close keeps grants, as nftables does
    fw.flush()
    assert fw.list_grants() == []


def test_firewall_fake_fails_on_demand() -> None:
    fw = RecordingFirewall(clock=Clock())
    g = Grant(A, "tcp", 22, 10)
    fw.fail("grant", "nft: boom", times=2)
    for _ in range(2):
        with pytest.raises(FirewallError, match=r"^nft: boom$"):
            fw.grant(g)
    fw.grant(g)
    assert [c.failed for c in fw.calls] == [True, True, False]
    assert fw.grants == [g]


def test_firewall_fake_failed_call_changes_nothing() -> None:
    fw = RecordingFirewall(clock=Clock())
    fw.grant(Grant(A, "tcp", 22, 10))
    fw.fail("flush")
    with pytest.raises(FirewallError):
        fw.flush()
    assert len(fw.list_grants()) == 1
    fw.fail("grant")
    with pytest.raises(FirewallError):
        fw.grant(Grant(B, "tcp", 22, 10))
    assert [g.source for g in fw.list_grants()] == [A]


def test_firewall_fake_fails_until_cleared() -> None:
    fw = RecordingFirewall()
    fw.fail("start", times=None)
    for _ in range(3):
        with pytest.raises(FirewallError, match="recorded firewall failure"):
            fw.start()
    fw.clear_failures()
    fw.start()
    assert fw.methods() == ["start"] * 4


def test_firewall_fake_rejects_unknown_failures() -> None:
    fw = RecordingFirewall()
    with pytest.raises(ValueError):
        fw.fail("revoke")
    with pytest.raises(ValueError):
        fw.fail("grant", times=0)
