# The whole decision chain (spa-protocol.md 6.3) over the real parsers, the
# real protocol core and the real replay cache, with a recording fake
# firewall and a fixed clock: every branch of the order of checks.

from __future__ import annotations

import base64
import logging
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from pipeline import Harness, udp_packet

from fwknopd_uci.model import Grant
from fwknopd_uci.spa import StanzaKeys, build_packet

KEY = base64.b64decode("OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc=")
HMAC = base64.b64decode("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyW"
                        "YNdP1lj2bTphujX1lqQXuQ==")
KEYS = StanzaKeys(KEY, HMAC)
OTHER = StanzaKeys(b"another key of 32 bytes length!!", b"another hmac key")
NOW = 1_796_392_300
STANZA = ("SOURCE ANY\n"
          "KEY_BASE64 OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc=\n"
          "HMAC_KEY_BASE64 bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyW"
          "YNdP1lj2bTphujX1lqQXuQ==\n"
          "FW_ACCESS_TIMEOUT 5\n")


def knock(message: str = "10.201.0.2,tcp/22", keys: StanzaKeys = KEYS, *,
          ts: int = NOW, **kwargs: object) -> str:
    return build_packet(message, keys, timestamp=ts, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path, STANZA, now=NOW)


def grants_of(h: Harness) -> list[Grant]:
    return list(h.firewall.grants)


def test_decide_valid_knock_grants_the_requested_port(harness: Harness) -> None:
    verdict = harness.send(udp_packet(knock()))
    assert verdict.grants == (Grant(IPv4Address("10.201.0.2"), "tcp", 22, 5),)
    assert grants_of(harness) == list(verdict.grants)
    assert any("Added access rule" in line and "10.201.0.2" in line and "tcp/22" in line
               for line in harness.lines(logging.INFO))
    assert (harness.tmp / "digest.cache").read_text().count("\n") == 2  # header + entry


def test_decide_replay_is_refused_also_after_restart(harness: Harness) -> None:
    wire = knock()
    assert harness.send(udp_packet(wire)).granted
    again = harness.send(udp_packet(wire))
    assert not again.granted
    assert any(line.startswith("Replay detected from source IP: 10.201.0.2")
               for line in harness.lines(logging.WARNING))
    restarted = Harness(harness.tmp, STANZA, now=NOW + 5)
    restarted.replay.load(NOW + 5)
    assert not restarted.send(udp_packet(wire)).granted
    assert grants_of(restarted) == []


def test_decide_wrong_key_opens_nothing_and_names_the_source(harness: Harness) -> None:
    verdict = harness.send(udp_packet(knock(keys=OTHER)))
    assert not verdict.granted and verdict.record is None
    assert "[10.201.0.2] (stanza #1) Non-corresponding HMAC for this stanza" in \
        harness.lines(logging.INFO)
    assert not (harness.tmp / "digest.cache").exists()


def test_decide_stale_and_future_packets_are_refused_but_burned(harness: Harness) -> None:
    for offset in (-300, 300):
        verdict = harness.send(udp_packet(knock(ts=NOW + offset)))
        assert not verdict.granted and verdict.record is not None
    warnings = harness.lines(logging.WARNING)
    assert "[10.201.0.2] (stanza #1) SPA data time difference is too great (300 seconds)." \
        in warnings
    assert grants_of(harness) == []


def test_decide_age_window_is_inclusive(harness: Harness) -> None:
    assert harness.send(udp_packet(knock(ts=NOW - 120))).granted
    assert not harness.send(udp_packet(knock(ts=NOW - 121))).granted


def test_decide_zero_address_means_packet_source(tmp_path: Path) -> None:
    h = Harness(tmp_path, STANZA, now=NOW)
    verdict = h.send(udp_packet(knock("0.0.0.0,tcp/22"), src="10.201.0.7"))
    assert verdict.grants[0].source == IPv4Address("10.201.0.7")


def test_decide_require_source_address_refuses_zero(tmp_path: Path) -> None:
    h = Harness(tmp_path, STANZA + "REQUIRE_SOURCE_ADDRESS Y\n", now=NOW)
    assert not h.send(udp_packet(knock("0.0.0.0,tcp/22"))).granted
    assert "Got 0.0.0.0 when valid source IP was required." in h.text()
    assert h.send(udp_packet(knock())).granted


def test_decide_require_username(tmp_path: Path) -> None:
    h = Harness(tmp_path, STANZA + "REQUIRE_USERNAME alice\n", now=NOW)
    assert not h.send(udp_packet(knock(username="bob"))).granted
    assert "Username in SPA data (bob) does not match required username: alice" in h.text()
    assert h.send(udp_packet(knock(username="alice"))).granted


@pytest.mark.parametrize("extra, message, granted", [
    ("OPEN_PORTS tcp/22, udp/53\n", "10.201.0.2,tcp/22,udp/53", True),
    ("OPEN_PORTS tcp/22\n", "10.201.0.2,tcp/22,udp/53", False),
    ("OPEN_PORTS tcp/22\n", "10.201.0.2,tcp/23", False),
    ("RESTRICT_PORTS tcp/23\n", "10.201.0.2,tcp/22", True),
    ("RESTRICT_PORTS tcp/23\n", "10.201.0.2,tcp/22,tcp/23", False),
])
def test_decide_port_lists(tmp_path: Path, extra: str, message: str, granted: bool) -> None:
    h = Harness(tmp_path, STANZA + extra, now=NOW)
    assert h.send(udp_packet(knock(message))).granted is granted
    if not granted:
        assert "One or more requested protocol/ports was denied per access.conf." in h.text()


def test_decide_client_timeout_is_capped(tmp_path: Path) -> None:
    h = Harness(tmp_path, STANZA + "MAX_FW_TIMEOUT 60\n", now=NOW)
    verdict = h.send(udp_packet(knock(msg_type=3, client_timeout=3600)))
    assert [g.timeout for g in verdict.grants] == [60]
    verdict = h.send(udp_packet(knock(msg_type=3, client_timeout=10)))
    assert [g.timeout for g in verdict.grants] == [10]


def test_decide_nat_and_command_messages_are_refused(harness: Harness) -> None:
    assert not harness.send(udp_packet(knock(msg_type=2, nat_access="192.0.2.9,22"))).granted
    assert "requested NAT access, but is not enabled/supported" in harness.text()
    assert not harness.send(udp_packet(knock("10.201.0.2,touch /tmp/x", msg_type=0))).granted
    assert "SPA Command messages are not allowed in the current configuration." \
        in harness.text()
    assert grants_of(harness) == []


def test_decide_second_stanza_with_its_own_keys(tmp_path: Path) -> None:
    first = ("SOURCE ANY\nKEY another key of 32 bytes length!!\nHMAC_KEY another hmac key\n")
    h = Harness(tmp_path, first + STANZA, now=NOW)
    verdict = h.send(udp_packet(knock()))
    assert verdict.stanza == 2 and verdict.granted
    assert "[10.201.0.2] (stanza #1) Non-corresponding HMAC for this stanza" in h.text()


def test_decide_source_and_destination_filters(tmp_path: Path) -> None:
    h = Harness(tmp_path, STANZA.replace("SOURCE ANY", "SOURCE 10.201.0.0/24")
                + "DESTINATION 10.201.0.1\n", now=NOW)
    assert not h.send(udp_packet(knock(), src="192.0.2.1")).granted
    assert "No access data found for source IP: 192.0.2.1" in h.text()
    assert not h.send(udp_packet(knock(), dst="10.201.0.9")).granted
    assert h.send(udp_packet(knock(), dst="10.201.0.1")).granted


def test_decide_test_mode_touches_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path, STANZA, now=NOW, test_mode=True)
    verdict = h.send(udp_packet(knock()))
    assert not verdict.granted and verdict.record is None
    assert "[10.201.0.2] (stanza #1) --test mode enabled, skipping firewall manipulation." \
        in h.text()
    assert not (tmp_path / "digest.cache").exists()


def test_decide_garbage_is_only_a_debug_line(harness: Harness) -> None:
    for payload in (b"hello", b"\x00" * 300, b"A" * 200, b"U2FsdGVkX1" + b"A" * 200):
        assert not harness.send(udp_packet(payload)).granted
    assert harness.lines(logging.INFO) == [] or all(
        "HMAC" in line for line in harness.lines(logging.INFO))


def test_decide_keys_never_reach_the_log(harness: Harness) -> None:
    harness.send(udp_packet(knock()))
    harness.send(udp_packet(knock(keys=OTHER)))
    text = harness.text()
    for secret in ("OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc", "bDCuE1dzt9NPFyvhejoKo29M"):
        assert secret not in text


def test_decide_full_replay_cache_fails_closed(harness: Harness) -> None:
    harness.replay.max_entries = 1
    assert harness.send(udp_packet(knock())).granted
    assert not harness.send(udp_packet(knock())).granted
    assert "Could not add digest to replay cache" in harness.text()
    assert len(grants_of(harness)) == 1
