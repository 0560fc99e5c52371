# Tests for capture/frames.py: parse_frame() on scapy-crafted frames of every
# supported link type, on damaged frames, and on random bytes.
#
# Every Ether()/Dot3() here names both MAC addresses: left empty, scapy would
# resolve them through the host's routing table (and may ARP for them).

from __future__ import annotations

import struct
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.l2 import LLC, SNAP, CookedLinux, Dot1AD, Dot1Q, Dot3, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.packet import Packet

from fwknopd_uci.capture.frames import MAX_PAYLOAD, LinkType, parse_frame
from fwknopd_uci.model import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, CapturedPacket

SRC, DST = "10.201.0.2", "10.201.0.1"
MAC_SRC, MAC_DST = "02:00:00:00:00:02", "02:00:00:00:00:01"
PAYLOAD = b"Q" * 180  # base64-looking, the size of a real SPA message
FCS = b"\xde\xad\xbe\xef"


def ether() -> Packet:
    return Ether(src=MAC_SRC, dst=MAC_DST)


def udp(payload: bytes = PAYLOAD, sport: int = 40000, dport: int = 62201) -> Packet:
    return IP(src=SRC, dst=DST) / UDP(sport=sport, dport=dport) / payload


# name -> (link type, function that wraps an IPv4 packet in that link layer)
FRAMINGS: dict[str, tuple[LinkType, Callable[[bytes], bytes]]] = {
    "ethernet": (LinkType.EN10MB, lambda ip: bytes(ether() / IP(ip))),
    "dot1q": (LinkType.EN10MB, lambda ip: bytes(ether() / Dot1Q(vlan=100) / IP(ip))),
    "qinq": (
        LinkType.EN10MB,
        lambda ip: bytes(ether() / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IP(ip)),
    ),
    "qinq-8100": (
        LinkType.EN10MB,
        lambda ip: bytes(ether() / Dot1Q(vlan=1) / Dot1Q(vlan=2) / IP(ip)),
    ),
    "pppoe": (
        LinkType.EN10MB,
        lambda ip: bytes(ether() / PPPoE(sessionid=7) / PPP(proto=0x21) / IP(ip)),
    ),
    "dot1q-pppoe": (
        LinkType.EN10MB,
        lambda ip: bytes(ether() / Dot1Q(vlan=5) / PPPoE(sessionid=7) / PPP(proto=0x21) / IP(ip)),
    ),
    "snap": (
        LinkType.EN10MB,
        lambda ip: bytes(
            Dot3(src=MAC_SRC, dst=MAC_DST) / LLC() / SNAP(OUI=0, code=0x0800) / IP(ip)
        ),
    ),
    "sll": (LinkType.LINUX_SLL, lambda ip: bytes(CookedLinux(proto=0x0800) / IP(ip))),
    "sll-dot1q": (
        LinkType.LINUX_SLL,
        lambda ip: bytes(CookedLinux(proto=0x8100) / Dot1Q() / IP(ip)),
    ),
    "ppp": (LinkType.PPP, lambda ip: b"\x00\x21" + ip),
    "ppp-hdlc": (LinkType.PPP, lambda ip: b"\xff\x03\x00\x21" + ip),
    "ppp-pfc": (LinkType.PPP, lambda ip: b"\x21" + ip),
    "ppp-hdlc-pfc": (LinkType.PPP, lambda ip: b"\xff\x03\x21" + ip),
    "ppp-ether": (
        LinkType.PPP_ETHER,
        lambda ip: bytes(PPPoE(sessionid=3) / PPP(proto=0x21) / IP(ip)),
    ),
    "raw": (LinkType.RAW, lambda ip: ip),
    "raw-12": (LinkType.RAW_12, lambda ip: ip),
    "raw-14": (LinkType.RAW_14, lambda ip: ip),
    "null-le": (LinkType.NULL, lambda ip: struct.pack("<I", 2) + ip),
    "null-be": (LinkType.NULL, lambda ip: struct.pack(">I", 2) + ip),
    "loop": (LinkType.LOOP, lambda ip: struct.pack(">I", 2) + ip),
}


def frame(name: str, ip: Packet | bytes) -> tuple[LinkType, bytes]:
    linktype, wrap = FRAMINGS[name]
    return linktype, wrap(bytes(ip))


@pytest.mark.parametrize("name", FRAMINGS)
def test_capture_frames_udp_on_every_link_type(name: str) -> None:
    linktype, data = frame(name, udp())
    assert parse_frame(linktype, data) == CapturedPacket(
        IPv4Address(SRC), IPv4Address(DST), IPPROTO_UDP, 40000, 62201, PAYLOAD
    )


@pytest.mark.parametrize("name", FRAMINGS)
def test_capture_frames_tcp_payload_after_data_offset(name: str) -> None:
    """TCP options (data offset > 5) are skipped; the payload is the segment data."""
    options = [("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]
    ip = IP(src=SRC, dst=DST) / TCP(sport=5555, dport=80, flags="PA", options=options) / PAYLOAD
    linktype, data = frame(name, ip)
    packet = parse_frame(linktype, data)
    assert packet is not None
    assert (packet.proto, packet.src_port, packet.dst_port) == (IPPROTO_TCP, 5555, 80)
    assert packet.payload == PAYLOAD


@pytest.mark.parametrize("name", FRAMINGS)
def test_capture_frames_icmp_body_after_eight_bytes(name: str) -> None:
    linktype, data = frame(name, IP(src=SRC, dst=DST) / ICMP(type=8, id=1, seq=2) / PAYLOAD)
    assert parse_frame(linktype, data) == CapturedPacket(
        IPv4Address(SRC), IPv4Address(DST), IPPROTO_ICMP, 0, 0, PAYLOAD
    )


@pytest.mark.parametrize("name", FRAMINGS)
def test_capture_frames_truncated_at_every_length(name: str) -> None:
    """Every proper prefix of a frame is refused (the IP total length is not there)."""
    linktype, data = frame(name, udp(b"x" * 40))
    assert parse_frame(linktype, data) is not None
    for length in range(len(data)):
        assert parse_frame(linktype, data[:length]) is None, length


@pytest.mark.parametrize("name", ["ethernet", "dot1q", "pppoe", "sll"])
def test_capture_frames_fcs_trailer_ignored(name: str) -> None:
    """fwknop issue #163: the payload ends at the IP total length, not the frame end."""
    linktype, data = frame(name, udp())
    packet = parse_frame(linktype, data + FCS)
    assert packet is not None and packet.payload == PAYLOAD


def test_capture_frames_ethernet_minimum_padding_ignored() -> None:
    linktype, data = frame("ethernet", udp(b"abc"))
    padded = data + b"\x00" * (60 - len(data)) + FCS
    packet = parse_frame(linktype, padded)
    assert packet is not None and packet.payload == b"abc"


def test_capture_frames_ip_options() -> None:
    ip = IP(src=SRC, dst=DST, options=[IPOption_Router_Alert()]) / UDP(dport=62201) / PAYLOAD
    assert IP(bytes(ip)).ihl == 6
    packet = parse_frame(*frame("ethernet", ip))
    assert packet is not None and packet.payload == PAYLOAD and packet.dst_port == 62201


def test_capture_frames_max_ihl_with_options() -> None:
    ip = IP(src=SRC, dst=DST, options=[IPOption_Router_Alert()] * 10) / UDP(dport=1) / b"z"
    assert IP(bytes(ip)).ihl == 15
    packet = parse_frame(*frame("raw", ip))
    assert packet is not None and packet.payload == b"z"


def patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


RAW_UDP = bytes(udp())  # IP header at 0, UDP header at 20, payload at 28


@pytest.mark.parametrize(
    ("what", "offset", "fmt", "value"),
    [
        ("IP total length beyond the frame", 2, "!H", len(RAW_UDP) + 1),
        ("IP total length shorter than the header", 2, "!H", 19),
        ("IP total length cuts the UDP header", 2, "!H", 24),
        ("IP total length zero", 2, "!H", 0),
        ("IHL below 5", 0, "B", 0x44),
        ("IHL zero", 0, "B", 0x40),
        ("IHL beyond the total length", 0, "B", 0x4F),
        ("IP version 6", 0, "B", 0x65),
        ("UDP length below 8", 24, "!H", 7),
        ("UDP length zero", 24, "!H", 0),
        ("UDP length beyond the IP packet", 24, "!H", len(RAW_UDP) - 20 + 1),
        ("UDP length 8: empty payload", 24, "!H", 8),
        ("more-fragments flag", 6, "!H", 0x2000),
        ("non-zero fragment offset", 6, "!H", 0x0001),
        ("fragment offset with DF", 6, "!H", 0x4000 | 0x00B9),
        ("protocol GRE", 9, "B", 47),
    ],
)
def test_capture_frames_lying_or_unusable_headers(
    what: str, offset: int, fmt: str, value: int
) -> None:
    assert parse_frame(LinkType.RAW, patch(RAW_UDP, offset, fmt, value)) is None, what


def test_capture_frames_dont_fragment_is_fine() -> None:
    assert parse_frame(LinkType.RAW, patch(RAW_UDP, 6, "!H", 0x4000)) is not None


def test_capture_frames_short_udp_length_cuts_payload() -> None:
    """A UDP length below the IP payload cuts the data, like the kernel's UDP stack."""
    packet = parse_frame(LinkType.RAW, patch(RAW_UDP, 24, "!H", 8 + 10))
    assert packet is not None and packet.payload == PAYLOAD[:10]


@pytest.mark.parametrize("data_offset", [0, 4, 15])
def test_capture_frames_tcp_bad_data_offset(data_offset: int) -> None:
    ip = bytes(IP(src=SRC, dst=DST) / TCP(dport=80) / b"abc")
    assert parse_frame(LinkType.RAW, patch(ip, 32, "B", data_offset << 4)) is None


def test_capture_frames_empty_payloads_refused() -> None:
    assert parse_frame(LinkType.RAW, bytes(udp(b""))) is None
    assert parse_frame(LinkType.RAW, bytes(IP(src=SRC, dst=DST) / TCP(flags="S"))) is None
    assert parse_frame(LinkType.RAW, bytes(IP(src=SRC, dst=DST) / ICMP())) is None


def test_capture_frames_payload_size_limit() -> None:
    """fwknopd ignores payloads over MAX_SPA_PACKET_LEN (1500) bytes."""
    ok = parse_frame(*frame("ethernet", udp(b"a" * MAX_PAYLOAD)))
    assert ok is not None and len(ok.payload) == MAX_PAYLOAD
    assert parse_frame(*frame("ethernet", udp(b"a" * (MAX_PAYLOAD + 1)))) is None
    assert parse_frame(LinkType.RAW, bytes(udp(b"a" * (65535 - 28)))) is None


def test_capture_frames_oversized_frame_with_huge_trailer() -> None:
    linktype, data = frame("ethernet", udp())
    packet = parse_frame(linktype, data + b"\xff" * 200_000)
    assert packet is not None and packet.payload == PAYLOAD


@pytest.mark.parametrize(
    ("linktype", "data"),
    [
        (LinkType.EN10MB, bytes(ether() / Dot1Q() / Dot1Q() / Dot1Q() / udp())),  # 3 tags
        (LinkType.EN10MB, bytes(ether() / PPPoE() / PPP(proto=0x57) / udp())),  # IPv6 proto
        (LinkType.EN10MB, bytes(Ether(src=MAC_SRC, dst=MAC_DST, type=0x86DD) / bytes(udp()))),
        (LinkType.EN10MB, bytes(Ether(src=MAC_SRC, dst=MAC_DST, type=0x0806) / bytes(udp()))),
        (LinkType.EN10MB, bytes(Dot3(src=MAC_SRC, dst=MAC_DST) / LLC() / bytes(udp()))),
        (LinkType.EN10MB, bytes(Ether(src=MAC_SRC, dst=MAC_DST, type=0x0600) / bytes(udp()))),
        (LinkType.LINUX_SLL, bytes(CookedLinux(proto=0x86DD) / bytes(udp()))),
        (LinkType.NULL, struct.pack("<I", 24) + bytes(udp())),  # AF_INET6 on BSD
        (LinkType.LOOP, struct.pack("<I", 2) + bytes(udp())),  # LOOP is big-endian only
        (LinkType.PPP, b"\x00\x57" + bytes(udp())),
        (LinkType.PPP, b"\x57" + bytes(udp())),
        (LinkType.PPP_ETHER, bytes(PPPoE() / PPP(proto=0xC021) / bytes(udp()))),
        (147, bytes(ether() / udp())),  # DLT_USER0: unknown link type
        (-1, bytes(udp())),
    ],
)
def test_capture_frames_not_ipv4_refused(linktype: int, data: bytes) -> None:
    assert parse_frame(linktype, data) is None


def test_capture_frames_payload_is_bytes_copy() -> None:
    packet = parse_frame(*frame("raw", udp()))
    assert packet is not None and type(packet.payload) is bytes


@settings(max_examples=400, deadline=None)
@given(linktype=st.sampled_from([*LinkType, 147]), data=st.binary(max_size=300))
def test_capture_frames_random_bytes_never_raise(linktype: int, data: bytes) -> None:
    packet = parse_frame(linktype, data)
    assert packet is None or 0 < len(packet.payload) <= MAX_PAYLOAD


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(sorted(FRAMINGS)),
    proto=st.sampled_from(["udp", "tcp", "icmp"]),
    edits=st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 400),
    tail=st.binary(max_size=8),
)
def test_capture_frames_mutated_frames_never_raise(
    name: str, proto: str, edits: list[tuple[int, int]], cut: int, tail: bytes
) -> None:
    """Flip bytes in the headers of valid frames, cut them and add trailers."""
    layer = {"udp": UDP(dport=62201), "tcp": TCP(dport=62201), "icmp": ICMP()}[proto]
    linktype, data = frame(name, IP(src=SRC, dst=DST) / layer / (b"P" * 150))
    mutable = bytearray(data)
    for offset, value in edits:
        if offset < len(mutable):
            mutable[offset] = value
    mutated = bytes(mutable[:cut]) + tail
    packet = parse_frame(linktype, mutated)
    if packet is not None:
        assert 0 < len(packet.payload) <= MAX_PAYLOAD
        assert packet.payload in mutated
