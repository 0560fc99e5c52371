# Tests for capture/pcap_file.py: read_pcap() on the reference suite's six
# captures (read from the shared folder, skipped when absent) and on files
# written here, and dissect() for -vvv dumps.

from __future__ import annotations

import errno
import json
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from test_capture_frames import FRAMINGS, PAYLOAD, frame, udp

from fwknopd_uci.capture.frames import LinkType, parse_frame
from fwknopd_uci.capture.pcap_file import dissect, read_pcap
from fwknopd_uci.capture.pfilter import DEFAULT_FILTER, PacketFilter
from fwknopd_uci.capture.sniffer import CaptureError
from fwknopd_uci.model import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP

BASE64 = re.compile(rb"[A-Za-z0-9+/=]+")
# Payloads each capture yields under the PCAP_FILTER pcaps.json gives it.
EXPECTED_COUNTS = {
    "spa_replay.pcap": 4,
    "multi_pkts.pcap": 100,
    "fcs_spa.pcap": 1,
    "spa_over_http.pcap": 2,  # the GET request and the HTTP response
    "spa_x_forwarded_for.pcap": 1,
    "spa_allow_any_user_agent.pcap": 2,
}


def write_pcap(path: Path, linktype: int, frames: list[bytes]) -> None:
    """A classic little-endian pcap file, written by hand (scapy's writer
    takes linktype 0 for "not given")."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for index, data in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000 + index, 0, len(data), len(data)) + data
    path.write_bytes(out)


def suite_filter(entry: dict[str, object]) -> PacketFilter:
    text = entry["pcap_filter"]
    return PacketFilter.parse(text if isinstance(text, str) else DEFAULT_FILTER)


def suite_entries(suite_dir: Path) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads((suite_dir / "pcaps.json").read_text())
    return entries


def test_capture_pcap_file_suite_counts(suite_dir: Path) -> None:
    entries = suite_entries(suite_dir)
    assert {str(entry["pcap"]) for entry in entries} == set(EXPECTED_COUNTS)
    for entry in entries:
        name = str(entry["pcap"])
        packets = list(read_pcap(suite_dir / name, suite_filter(entry)))
        assert len(packets) == EXPECTED_COUNTS[name], name


def test_capture_pcap_file_fcs_payload_is_exactly_the_spa_string(suite_dir: Path) -> None:
    """fwknop issue #163: the 4-byte FCS after the IP packet is not payload."""
    (packet,) = read_pcap(suite_dir / "fcs_spa.pcap", PacketFilter.parse(DEFAULT_FILTER))
    assert len(packet.payload) == 225
    assert BASE64.fullmatch(packet.payload)
    assert (packet.proto, packet.dst_port) == (IPPROTO_UDP, 62201)
    assert str(packet.dst_ip) == "192.168.18.11"


def test_capture_pcap_file_multi_pkts(suite_dir: Path) -> None:
    """100 UDP payloads under the default filter; the ICMP port-unreachables
    (which quote a UDP 62201 header) are skipped."""
    path = suite_dir / "multi_pkts.pcap"
    packets = list(read_pcap(path, PacketFilter.parse(DEFAULT_FILTER)))
    assert len(packets) == 100
    assert {p.proto for p in packets} == {IPPROTO_UDP}
    dummies = [p for p in packets if re.fullmatch(rb"[0-9]+A+", p.payload)]
    assert len(dummies) == 99
    assert all(BASE64.fullmatch(p.payload) for p in packets)
    unfiltered = list(read_pcap(path, None))
    assert sum(p.proto == IPPROTO_ICMP for p in unfiltered) == 100
    assert len(unfiltered) == 200


def test_capture_pcap_file_replay(suite_dir: Path) -> None:
    packets = list(read_pcap(suite_dir / "spa_replay.pcap", PacketFilter.parse(DEFAULT_FILTER)))
    payloads = [p.payload for p in packets]
    assert payloads[0] == payloads[1]  # the replayed packet
    assert payloads[3] == b"U2FsdGVkX1" + payloads[2]  # prefix re-added (5.3 rule 2)


@pytest.mark.parametrize(
    ("name", "marker"),
    [
        ("spa_over_http.pcap", b"User-Agent: Fwknop/"),
        ("spa_x_forwarded_for.pcap", b"X-Forwarded-For: 1.2.3.4"),
        ("spa_allow_any_user_agent.pcap", b"Firefox"),
    ],
)
def test_capture_pcap_file_http(suite_dir: Path, name: str, marker: bytes) -> None:
    packets = list(read_pcap(suite_dir / name, PacketFilter.parse("port 80")))
    request = packets[0]
    assert request.proto == IPPROTO_TCP and request.dst_port == 80
    assert request.payload.startswith(b"GET /") and marker in request.payload
    assert list(read_pcap(suite_dir / name, PacketFilter.parse(DEFAULT_FILTER))) == []
    assert list(read_pcap(suite_dir / name, PacketFilter.parse("tcp dst port 80"))) == [request]


@pytest.mark.parametrize("name", sorted(FRAMINGS))
def test_capture_pcap_file_every_link_type(tmp_path: Path, name: str) -> None:
    linktype, data = frame(name, udp())
    path = tmp_path / f"{name}.pcap"
    write_pcap(path, linktype, [data, frame(name, udp(b"other", dport=9))[1]])
    assert [p.payload for p in read_pcap(path, PacketFilter.parse(DEFAULT_FILTER))] == [PAYLOAD]
    assert len(list(read_pcap(path, None))) == 2


def pcapng_block(kind: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def test_capture_pcap_file_pcapng_with_mixed_link_types(tmp_path: Path) -> None:
    """Each pcapng record is parsed with its own interface's link type."""
    records = [
        (LinkType.EN10MB, frame("ethernet", udp(b"one"))[1]),
        (LinkType.RAW, frame("raw", udp(b"two"))[1]),
    ]
    out = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for linktype, _ in records:
        out += pcapng_block(1, struct.pack("<HHI", linktype, 0, 65535))
    for interface, (_, data) in enumerate(records):
        out += pcapng_block(6, struct.pack("<IIIII", interface, 0, 0, len(data), len(data)) + data)
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(out)
    assert [p.payload for p in read_pcap(path, None)] == [b"one", b"two"]


def test_capture_pcap_file_errors_raise_at_call(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as missing:
        read_pcap(tmp_path / "absent.pcap", None)
    assert missing.value.errno == errno.ENOENT and "absent.pcap" in str(missing.value)
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture file at all")
    with pytest.raises(CaptureError) as bad:
        read_pcap(junk, None)
    assert bad.value.errno == errno.EINVAL and "junk.pcap" in str(bad.value)


def test_capture_pcap_file_truncated_last_record(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    write_pcap(
        path, 1, [frame("ethernet", udp(b"whole"))[1], frame("ethernet", udp(b"cut short"))[1]]
    )
    path.write_bytes(path.read_bytes()[:-5])
    assert [p.payload for p in read_pcap(path, None)] == [b"whole"]


def test_capture_pcap_file_consistent_with_parse_frame(tmp_path: Path) -> None:
    frames = [frame(name, udp())[1] for name in ("ethernet", "dot1q", "pppoe", "snap")]
    frames.append(b"\x00" * 30)
    path = tmp_path / "eth.pcap"
    write_pcap(path, 1, frames)
    parsed = [parse_frame(LinkType.EN10MB, data) for data in frames]
    assert list(read_pcap(path, None)) == [p for p in parsed if p is not None]


def test_capture_pcap_file_dissect_ethernet() -> None:
    data = bytes(
        Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
        / IP(src="10.201.0.2", dst="10.201.0.1")
        / UDP(dport=62201)
        / b"spa"
    )
    text = dissect(LinkType.EN10MB, data)
    assert "###[ Ethernet ]###" in text and "###[ UDP ]###" in text
    assert "62201" in text and "10.201.0.1" in text


@pytest.mark.parametrize("linktype", [LinkType.RAW, LinkType.RAW_12, LinkType.RAW_14])
def test_capture_pcap_file_dissect_raw_ip(linktype: LinkType) -> None:
    text = dissect(linktype, bytes(IP(src="10.201.0.2", dst="10.201.0.1") / UDP() / b"x"))
    assert "###[ IP ]###" in text


@pytest.mark.parametrize(
    ("linktype", "data"),
    [
        (147, b"\x01\x02"),
        (1, b""),
        (1, b"\xff" * 7),
        (113, b"\x00" * 3),
        (0, struct.pack("<I", 2) + b"\x45"),
        (9, b"\xff\x03\x00\x21\x4f"),
    ],
)
def test_capture_pcap_file_dissect_never_raises(linktype: int, data: bytes) -> None:
    assert isinstance(dissect(linktype, data), str)


@settings(max_examples=200, deadline=None)
@given(linktype=st.sampled_from([*LinkType, 147]), data=st.binary(max_size=120))
def test_capture_pcap_file_dissect_random_bytes(linktype: int, data: bytes) -> None:
    assert isinstance(dissect(linktype, data), str)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(FRAMINGS)), cut=st.integers(0, 120))
def test_capture_pcap_file_dissect_truncated_frames(name: str, cut: int) -> None:
    linktype, data = frame(name, udp())
    assert isinstance(dissect(linktype, data[:cut]), str)
