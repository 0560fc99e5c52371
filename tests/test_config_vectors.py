# Every access.conf / fwknopd.conf of the reference test suite (read from the
# shared folder, never copied) parses, and its keys really open the suite's
# fixed packets; the broken access.conf files of spa-protocol.md 13.3 are fatal.

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fwknopd_uci.config import (
    AccessStanza,
    ConfigError,
    parse_access_conf,
    parse_server_conf,
)
from fwknopd_uci.spa import SpaRefused, open_packet


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def packet_records(suite_dir: Path) -> list[dict[str, Any]]:
    path = suite_dir / "packets.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with path.open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def pcap_records(suite_dir: Path) -> list[dict[str, Any]]:
    path = suite_dir / "pcaps.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    records: list[dict[str, Any]] = json.loads(path.read_text())
    return records


def opens(stanzas: list[AccessStanza], packet: str) -> bool:
    for stanza in stanzas:
        assert stanza.keys is not None
        try:
            open_packet(packet, stanza.keys)
        except SpaRefused:
            continue
        return True
    return False


def test_config_vectors_every_suite_config_parses(tmp_path: Path, suite_dir: Path) -> None:
    records = packet_records(suite_dir) + pcap_records(suite_dir)
    seen_access: set[str] = set()
    for index, record in enumerate(records):
        access = write(tmp_path, f"{index}_{record['access_conf_name']}", record["access_conf"])
        server = write(tmp_path, f"{index}_{record['fwknopd_conf_name']}",
                       record["fwknopd_conf"])
        config, warnings = parse_server_conf(server, pcap_file_mode="pcap" in record)
        assert not [w for w in warnings if "Ignoring unknown" in w], record["fwknopd_conf_name"]
        stanzas, warnings = parse_access_conf(access, server_config=config)
        assert stanzas, record["access_conf_name"]
        assert not [w for w in warnings if "Ignoring unknown" in w], record["access_conf_name"]
        if "pcap" in record:
            assert not config.enable_spa_packet_aging  # 6.6: --pcap-file turns aging off
        seen_access.add(record["access_conf_name"])
    assert len(seen_access) >= 10


def test_config_vectors_parsed_keys_open_the_accepted_packets(tmp_path: Path,
                                                              suite_dir: Path) -> None:
    """The strongest check of KEY / KEY_BASE64 / legacy handling: the keys we
    parse decrypt and authenticate every packet the suite expects accepted."""
    accepted = [r for r in packet_records(suite_dir) if r["expect"] == "accept"]
    assert accepted
    for index, record in enumerate(accepted):
        access = write(tmp_path, f"{index}.conf", record["access_conf"])
        stanzas, _ = parse_access_conf(access)
        assert opens(stanzas, record["packet"]), record["detail"]


def test_config_vectors_specific_suite_configs(tmp_path: Path, suite_dir: Path) -> None:
    by_name = {r["access_conf_name"]: r["access_conf"] for r in packet_records(suite_dir)}
    dual, _ = parse_access_conf(write(tmp_path, "d.conf", by_name[
        "dual_key_legacy_iv_access.conf"]))
    assert [s.keys.mode for s in dual if s.keys] == ["cbc", "legacy"]
    assert [s.fw_access_timeout for s in dual] == [2, 3]
    long2, warnings = parse_access_conf(write(tmp_path, "l.conf", by_name[
        "legacy_iv_long_key2_access.conf"]))
    assert long2[0].keys is not None and long2[0].keys.key == b"1234567890123456"
    assert any("truncating encryption key in legacy mode" in w for w in warnings)
    ports, _ = parse_access_conf(write(tmp_path, "p.conf", by_name[
        "hmac_sha256_open_ports_access.conf"]))
    assert ports[0].open_ports == (("udp", 6001), ("tcp", 22), ("tcp", 80), ("tcp", 12345))
    assert ports[0].keys is not None and ports[0].keys.hmac_type == "sha256"
    assert len(ports[0].source.networks) == 5


# spa-protocol.md 13.3: the suite's broken access.conf files (written here from
# their description) must stop the server at start-up.
BROKEN = {
    "fuzzing_source_access.conf": (
        "SOURCE   123.123.123.1234/24, A0.10.10.10\nKEY      fwknoptest\n", "SOURCE"),
    "fuzzing_source_only_long_octet.conf": (
        "SOURCE   123.123.123.1234/24\nKEY      fwknoptest\n", "SOURCE"),
    "fuzzing_source_only_letter.conf": (
        "SOURCE   A0.10.10.10\nKEY      fwknoptest\n", "SOURCE"),
    "fuzzing_open_ports_access.conf": (
        "SOURCE   ANY\nOPEN_PORTS   tcp/123453\nKEY      fwknoptest\n", "OPEN_PORTS"),
    "fuzzing_restrict_ports_access.conf": (
        f"SOURCE   ANY\nRESTRICT_PORTS   {'A' * 300}\nKEY      fwknoptest\n", "RESTRICT_PORTS"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_config_vectors_fuzzing_access_files_are_fatal(tmp_path: Path, name: str) -> None:
    text, variable = BROKEN[name]
    with pytest.raises(ConfigError) as info:
        parse_access_conf(write(tmp_path, name, text))
    assert info.value.variable == variable
    assert info.value.path == str(tmp_path / name) and info.value.line is not None
