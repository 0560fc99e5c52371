# The replay cache's bound and its horizon (server/replay.py): forgetting an
# entry must never let its packet in again, whatever the age settings become.

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pipeline import Harness, udp_packet
from test_server_decide import NOW, STANZA, knock

from fwknopd_uci.server.replay import FUTURE_CAP, ReplayCache, ReplayEntry


def entry(digest: str, created: int) -> ReplayEntry:
    return ReplayEntry(digest.ljust(43, "A"), 17, "10.201.0.2", 40000, "10.201.0.1", 62201,
                       created)


def test_replay_prune_sets_the_horizon_and_persists_it(tmp_path: Path) -> None:
    cache = ReplayCache(tmp_path / "d", retention=100)
    cache.add(entry("a", 1000))
    cache.add(entry("b", 1500))
    assert cache.prune(1550) == 1 and cache.horizon == 1000
    again = ReplayCache(tmp_path / "d", retention=100)
    again.load(5000)  # both expired now: rewritten with the horizon line
    assert len(again) == 0 and again.horizon == 1500
    assert "# fwknopd-uci horizon 1500" in (tmp_path / "d").read_text()
    third = ReplayCache(tmp_path / "d", retention=None)
    third.load(5000)
    assert third.horizon == 1500


def test_replay_widening_the_window_does_not_revive_a_forgotten_knock(tmp_path: Path) -> None:
    narrow = STANZA  # fwknopd.conf below sets a 1 s window
    h = Harness(tmp_path, narrow, "MAX_SPA_PACKET_AGE 1;\n", now=NOW)
    wire = knock(ts=NOW)
    assert h.send(udp_packet(wire)).granted
    h.now = NOW + 2 * 1 + 700
    assert h.replay.prune(h.now) == 1 and len(h.replay) == 0
    # The operator now turns packet aging off (or widens the window).
    wide = Harness(tmp_path, narrow, "ENABLE_SPA_PACKET_AGING N;\n", now=h.now)
    wide.replay = h.replay
    wide.daemon.replay = h.replay
    verdict = wide.send(udp_packet(wire))
    assert not verdict.granted
    assert "Replay suspected" in wide.text()
    assert wide.firewall.grants == []


def test_replay_future_stamps_are_capped(tmp_path: Path) -> None:
    assert ReplayCache.entry_time(1000.5, 900) == 1000
    assert ReplayCache.entry_time(1000.0, 1500) == 1500
    assert ReplayCache.entry_time(1000.0, 2**31 - 1) == 1000 + FUTURE_CAP


def test_replay_unwritable_digest_file_refuses_the_knock(tmp_path: Path) -> None:
    h = Harness(tmp_path, STANZA, now=NOW)
    h.replay.path = tmp_path / "missing-dir" / "digest.cache"
    verdict = h.send(udp_packet(knock()))
    assert not verdict.granted and h.firewall.grants == []
    assert "Could not add digest to replay cache" in h.text()


def test_replay_check_writable_and_file_bounds(tmp_path: Path) -> None:
    cache = ReplayCache(tmp_path / "d", retention=None)
    cache.check_writable()
    assert (tmp_path / "d").read_text().startswith("# <digest>")
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o600
    with pytest.raises(OSError, match="not a regular file"):
        ReplayCache(Path("/dev/zero"), retention=None).load(0)
    big = tmp_path / "big"
    with open(big, "wb") as handle:
        handle.truncate(9 * 1024 * 1024)
    with pytest.raises(OSError, match="larger than"):
        ReplayCache(big, retention=None).load(0)


def test_replay_nearly_full_cache_warns_at_load(tmp_path: Path) -> None:
    cache = ReplayCache(tmp_path / "d", retention=None, max_entries=10)
    for i in range(9):
        cache.add(entry(f"x{i}", 100 + i))
    reloaded = ReplayCache(tmp_path / "d", retention=None, max_entries=10)
    warnings = reloaded.load(200)
    assert any("new knocks are refused" in w for w in warnings)


def test_replay_horizon_is_ignored_when_replay_detection_is_off(tmp_path: Path) -> None:
    h = Harness(tmp_path, STANZA, "ENABLE_DIGEST_PERSISTENCE N;\n", now=NOW)
    h.replay.horizon = NOW + 10
    assert h.send(udp_packet(knock())).granted
    assert not os.path.exists(tmp_path / "digest.cache")
