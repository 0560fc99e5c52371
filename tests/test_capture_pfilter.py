# Tests for capture/pfilter.py: PCAP_FILTER parsing and its predicate, and the
# generated classic BPF run through a small interpreter written here, checked
# against `tcpdump -dd` as an oracle and against parse_frame() + matches().
# The same programs running in the kernel are tested in test_capture_sniffer.py.

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, CookedLinux, Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Packet
from test_capture_frames import DST, FRAMINGS, MAC_DST, MAC_SRC, SRC, frame

from fwknopd_uci.capture.frames import LinkType, parse_frame
from fwknopd_uci.capture.pfilter import SUPPORTED_FORMS, PacketFilter
from fwknopd_uci.model import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP

PACKET_HOST, PACKET_OUTGOING = 0, 4
SKF_AD_PKTTYPE = (-0x1000 + 4) & 0xFFFFFFFF


# --- parsing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("udp port 62201", PacketFilter(IPPROTO_UDP, 62201, False)),
        ("udp dst port 62201", PacketFilter(IPPROTO_UDP, 62201, True)),
        ("tcp port 80", PacketFilter(IPPROTO_TCP, 80, False)),
        ("tcp dst port 1", PacketFilter(IPPROTO_TCP, 1, True)),
        ("port 65535", PacketFilter(None, 65535, False)),
        ("dst port 443", PacketFilter(None, 443, True)),
        ("UDP Port 62201", PacketFilter(IPPROTO_UDP, 62201, False)),
        ("  tcp\tDST   port  022 ", PacketFilter(IPPROTO_TCP, 22, True)),
        ("PORT 1", PacketFilter(None, 1, False)),
    ],
)
def test_capture_pfilter_parse_supported_forms(text: str, expected: PacketFilter) -> None:
    assert PacketFilter.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "udp",
        "port",
        "port 0",
        "port 65536",
        "port 123456",
        "port -1",
        "port 0x10",
        "port 6220１",  # a full-width digit: int() would take it, libpcap would not
        "udp src port 62201",
        "udp port 62201 and host 10.0.0.1",
        "udp and port 62201",
        "udp port 62201 or tcp port 22",
        "icmp",
        "sctp port 1",
        "host 10.0.0.1",
        "portrange 1-100",
        "not udp port 62201",
        "ip6 and udp port 62201",
        "udp port 62201;",
        "udpport 62201",
        "dst udp port 1",
    ],
)
def test_capture_pfilter_parse_rejects_with_clear_message(text: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        PacketFilter.parse(text)
    message = str(excinfo.value)
    assert repr(text) in message
    for form in SUPPORTED_FORMS:
        assert f'"{form}"' in message
    assert message.count('"') == 2 * len(SUPPORTED_FORMS)  # exactly the supported forms


def test_capture_pfilter_supported_forms_are_the_documented_six() -> None:
    assert SUPPORTED_FORMS == (
        "udp port N",
        "udp dst port N",
        "tcp port N",
        "tcp dst port N",
        "port N",
        "dst port N",
    )


@pytest.mark.parametrize("form", SUPPORTED_FORMS)
def test_capture_pfilter_str_round_trips(form: str) -> None:
    text = form.replace("N", "62201")
    pfilter = PacketFilter.parse(text)
    assert str(pfilter) == text
    assert PacketFilter.parse(str(pfilter)) == pfilter


@pytest.mark.parametrize(("proto", "port"), [(IPPROTO_ICMP, 1), (None, 0), (IPPROTO_UDP, 65536)])
def test_capture_pfilter_invalid_values_refused(proto: int | None, port: int) -> None:
    with pytest.raises(ValueError):
        PacketFilter(proto, port)


# --- the predicate ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "proto", "sport", "dport", "expected"),
    [
        ("udp port 62201", IPPROTO_UDP, 1000, 62201, True),
        ("udp port 62201", IPPROTO_UDP, 62201, 1000, True),
        ("udp port 62201", IPPROTO_UDP, 1000, 1001, False),
        ("udp port 62201", IPPROTO_TCP, 1000, 62201, False),
        ("udp port 62201", IPPROTO_ICMP, 0, 0, False),
        ("udp dst port 62201", IPPROTO_UDP, 1000, 62201, True),
        ("udp dst port 62201", IPPROTO_UDP, 62201, 1000, False),
        ("tcp port 80", IPPROTO_TCP, 80, 5000, True),
        ("tcp port 80", IPPROTO_UDP, 80, 5000, False),
        ("tcp dst port 80", IPPROTO_TCP, 80, 5000, False),
        ("port 80", IPPROTO_TCP, 5000, 80, True),
        ("port 80", IPPROTO_UDP, 80, 5000, True),
        ("port 80", IPPROTO_ICMP, 80, 80, False),
        ("port 80", 132, 80, 80, False),  # SCTP: parse_frame never yields it
        ("dst port 80", IPPROTO_UDP, 80, 5000, False),
        ("dst port 80", IPPROTO_TCP, 5000, 80, True),
    ],
)
def test_capture_pfilter_matches(
    text: str, proto: int, sport: int, dport: int, expected: bool
) -> None:
    assert PacketFilter.parse(text).matches(proto, sport, dport) is expected


# --- a classic BPF interpreter (linux/filter.h semantics) -------------------


def run_bpf(program: bytes, data: bytes, pkttype: int = PACKET_HOST) -> int:
    """Run a classic BPF program on ``data``; return the accepted snap length."""
    insns = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0
    for _ in range(len(insns)):  # jumps only go forward: bounded by the length
        code, jt, jf, k = insns[pc]
        pc += 1
        cls, size, mode = code & 0x07, code & 0x18, code & 0xE0
        if cls in (0x00, 0x01):  # LD, LDX
            if mode == 0x00:
                value = k
            elif mode == 0x80:  # LEN
                value = len(data)
            elif mode == 0x60:  # MEM
                value = mem[k]
            elif mode == 0xA0:  # MSH: 4 * (P[k] & 0xf)
                if k >= len(data):
                    return 0
                value = (data[k] & 0x0F) * 4
            else:  # ABS, IND
                offset = k + (x if mode == 0x40 else 0)
                if mode == 0x20 and k >= 0xFFFFF000:
                    assert k == SKF_AD_PKTTYPE, hex(k)
                    value = pkttype
                else:
                    width = {0x00: 4, 0x08: 2, 0x10: 1}[size]
                    if offset + width > len(data):
                        return 0  # an out-of-bounds load drops the packet
                    value = int.from_bytes(data[offset : offset + width], "big")
            if cls == 0x00:
                a = value
            else:
                x = value
        elif cls == 0x02:  # ST
            mem[k] = a
        elif cls == 0x03:  # STX
            mem[k] = x
        elif cls == 0x04:  # ALU
            operand = x if code & 0x08 else k
            op = code & 0xF0
            if op == 0x00:
                a = a + operand
            elif op == 0x10:
                a = a - operand
            elif op == 0x50:
                a = a & operand
            elif op == 0x40:
                a = a | operand
            elif op == 0x60:
                a = a << operand
            elif op == 0x70:
                a = a >> operand
            else:
                raise AssertionError(f"ALU op {op:#x} not used by these programs")
            a &= 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            op = code & 0xF0
            if op == 0x00:
                pc += k
                continue
            operand = x if code & 0x08 else k
            taken = {
                0x10: a == operand,
                0x20: a > operand,
                0x30: a >= operand,
                0x40: bool(a & operand),
            }[op]
            pc += jt if taken else jf
        elif cls == 0x06:  # RET
            return a if size == 0x10 else k
        else:  # MISC
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
    raise AssertionError("program fell off its end")


def accepts(pfilter: PacketFilter, linktype: LinkType, data: bytes, pkttype: int = 0) -> bool:
    return run_bpf(pfilter.bpf_program(linktype), data, pkttype) > 0


# --- the oracle: tcpdump -dd on untagged frames ----------------------------


def tcpdump_program(tmp_path: Path, linktype: int, text: str) -> bytes:
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.skip("tcpdump is not installed")
    # An empty capture file of the link type makes tcpdump compile for it
    # without opening any interface.
    dummy = tmp_path / f"dlt{linktype}.pcap"
    dummy.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
    out = subprocess.run(
        [tcpdump, "-r", str(dummy), "-dd", text],
        check=True,
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    program = b""
    for line in out.splitlines():
        fields = line.strip().strip("{},").split(",")
        code, jt, jf, k = (int(f.strip().strip("}"), 0) for f in fields[:4])
        program += struct.pack("=HBBI", code, jt, jf, k)
    return program


def oracle_corpus() -> list[tuple[str, Packet]]:
    """IPv4 packets of every kind the filters discriminate between."""
    corpus: list[tuple[str, Packet]] = []
    for sport, dport in [(40000, 62201), (62201, 40000), (40000, 40001), (62201, 62201)]:
        for name, l4 in [
            ("udp", UDP(sport=sport, dport=dport)),
            ("tcp", TCP(sport=sport, dport=dport, flags="PA")),
        ]:
            corpus.append((f"{name} {sport}>{dport}", IP(src=SRC, dst=DST) / l4 / (b"x" * 40)))
            corpus.append(
                (
                    f"{name} options {sport}>{dport}",
                    IP(src=SRC, dst=DST, options=[IPOption_Router_Alert()]) / l4 / (b"x" * 40),
                )
            )
            later = IP(src=SRC, dst=DST, frag=100, proto=l4.overload_fields[IP]["proto"])
            corpus.append((f"{name} later fragment", later / bytes(l4) / (b"x" * 40)))
    corpus.append(("icmp", IP(src=SRC, dst=DST) / ICMP() / (b"x" * 40)))
    corpus.append(
        (
            "icmp unreachable quoting udp 62201",
            IP(src=SRC, dst=DST)
            / ICMP(type=3, code=3)
            / IP(src=DST, dst=SRC)
            / UDP(sport=1, dport=62201)
            / b"x",
        )
    )
    corpus.append(("gre", IP(src=SRC, dst=DST, proto=47) / (b"\x00" * 40)))
    return corpus


def wrap(linktype: LinkType, ip: bytes) -> bytes:
    if linktype == LinkType.EN10MB:
        return bytes(Ether(src=MAC_SRC, dst=MAC_DST, type=0x0800) / ip)
    if linktype == LinkType.LINUX_SLL:
        return bytes(CookedLinux(proto=0x0800) / ip)
    return ip


@pytest.mark.parametrize("linktype", [LinkType.EN10MB, LinkType.LINUX_SLL, LinkType.RAW])
@pytest.mark.parametrize("form", SUPPORTED_FORMS)
def test_capture_pfilter_bpf_agrees_with_tcpdump(
    tmp_path: Path, linktype: LinkType, form: str
) -> None:
    """On untagged IPv4 frames, ours and `tcpdump -dd` accept exactly the same."""
    text = form.replace("N", "62201")
    oracle = tcpdump_program(tmp_path, linktype, text)
    ours = PacketFilter.parse(text).bpf_program(linktype)
    verdicts = set()
    for what, ip in oracle_corpus():
        data = wrap(linktype, bytes(ip))
        verdict = run_bpf(ours, data) > 0
        assert verdict == (run_bpf(oracle, data) > 0), what
        verdicts.add(verdict)
    assert verdicts == {True, False}  # the corpus exercises both outcomes


@pytest.mark.parametrize("linktype", [LinkType.EN10MB, LinkType.RAW])
def test_capture_pfilter_bpf_stricter_than_tcpdump_where_documented(
    tmp_path: Path, linktype: LinkType
) -> None:
    """IPv6, SCTP and first fragments pass tcpdump's "port N" but not ours."""
    oracle = tcpdump_program(tmp_path, linktype, "port 62201")
    ours = PacketFilter.parse("port 62201").bpf_program(linktype)
    first_fragment = IP(src=SRC, dst=DST, flags="MF") / UDP(dport=62201) / (b"x" * 40)
    for what, packet in [
        ("ipv6 udp", IPv6(src="fd00::2", dst="fd00::1") / UDP(dport=62201) / b"x"),
        ("sctp", IP(src=SRC, dst=DST) / SCTP(sport=1, dport=62201)),
        ("first fragment", first_fragment),
    ]:
        if linktype == LinkType.EN10MB:
            data = bytes(Ether(src=MAC_SRC, dst=MAC_DST) / packet)
        else:
            data = bytes(packet)
        assert run_bpf(oracle, data) > 0, what
        assert run_bpf(ours, data) == 0, what


# --- our own invariants ----------------------------------------------------


def test_capture_pfilter_bpf_drops_outgoing() -> None:
    pfilter = PacketFilter.parse("udp port 62201")
    for name, (linktype, wrapper) in FRAMINGS.items():
        data = wrapper(bytes(IP(src=SRC, dst=DST) / UDP(dport=62201) / (b"x" * 40)))
        assert accepts(pfilter, linktype, data, PACKET_HOST), name
        assert not accepts(pfilter, linktype, data, PACKET_OUTGOING), name
        assert run_bpf(pfilter.bpf_program(linktype), data) == 65535


def test_capture_pfilter_bpf_refuses_non_ip() -> None:
    pfilter = PacketFilter.parse("port 62201")
    arp = bytes(Ether(src=MAC_SRC, dst=MAC_DST) / ARP(psrc=SRC, pdst=DST))
    assert not accepts(pfilter, LinkType.EN10MB, arp)
    assert not accepts(pfilter, LinkType.EN10MB, b"")
    assert not accepts(pfilter, LinkType.RAW, b"\x45")


def test_capture_pfilter_bpf_unknown_link_type() -> None:
    with pytest.raises(ValueError):
        PacketFilter.parse("port 1").bpf_program(147)


def test_capture_pfilter_bpf_program_shape() -> None:
    for linktype in LinkType:
        program = PacketFilter.parse("udp port 62201").bpf_program(linktype)
        assert len(program) % 8 == 0 and 0 < len(program) // 8 <= 4096
        # The last two instructions are "ret #65535" and "ret #0".
        assert program[-16:] == struct.pack("=HBBI", 6, 0, 0, 65535) + struct.pack(
            "=HBBI", 6, 0, 0, 0
        )


FILTERS = [PacketFilter.parse(form.replace("N", "62201")) for form in SUPPORTED_FORMS]


@settings(max_examples=500, deadline=None)
@given(
    name=st.sampled_from(sorted(FRAMINGS)),
    pfilter=st.sampled_from(FILTERS),
    proto=st.sampled_from(["udp", "tcp", "icmp"]),
    sport=st.sampled_from([62201, 1024, 62202]),
    dport=st.sampled_from([62201, 80, 62200]),
    ihl_options=st.integers(0, 10),
    size=st.integers(0, 1600),
    trailer=st.binary(max_size=6),
)
def test_capture_pfilter_bpf_and_python_agree_on_wellformed_frames(
    name: str,
    pfilter: PacketFilter,
    proto: str,
    sport: int,
    dport: int,
    ihl_options: int,
    size: int,
    trailer: bytes,
) -> None:
    """Python accepting implies the kernel program accepting, and on intact
    frames with a payload the two decisions are the same."""
    layer = {
        "udp": UDP(sport=sport, dport=dport),
        "tcp": TCP(sport=sport, dport=dport),
        "icmp": ICMP(),
    }[proto]
    ip = IP(src=SRC, dst=DST, options=[IPOption_Router_Alert()] * ihl_options) / layer
    linktype, data = frame(name, ip / (b"p" * size))
    data += trailer
    packet = parse_frame(linktype, data)
    python = packet is not None and pfilter.matches(packet.proto, packet.src_port, packet.dst_port)
    kernel = accepts(pfilter, linktype, data)
    if python:
        assert kernel
    if 0 < size <= 1500:
        assert python == kernel


@settings(max_examples=500, deadline=None)
@given(
    name=st.sampled_from(sorted(FRAMINGS)),
    pfilter=st.sampled_from(FILTERS),
    edits=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=5),
    cut=st.integers(0, 300),
)
def test_capture_pfilter_bpf_never_drops_what_python_accepts(
    name: str, pfilter: PacketFilter, edits: list[tuple[int, int]], cut: int
) -> None:
    ip = IP(src=SRC, dst=DST) / UDP(sport=5, dport=62201) / (b"p" * 200)
    linktype, data = frame(name, ip)
    mutable = bytearray(data)
    for offset, value in edits:
        if offset < len(mutable):
            mutable[offset] = value
    mutated = bytes(mutable[:cut])
    packet = parse_frame(linktype, mutated)
    if packet is not None and pfilter.matches(packet.proto, packet.src_port, packet.dst_port):
        assert accepts(pfilter, linktype, mutated)


@settings(max_examples=300, deadline=None)
@given(linktype=st.sampled_from(list(LinkType)), data=st.binary(max_size=200))
def test_capture_pfilter_bpf_total_on_random_bytes(linktype: LinkType, data: bytes) -> None:
    pfilter = PacketFilter.parse("port 62201")
    packet = parse_frame(linktype, data)
    if packet is not None and pfilter.matches(packet.proto, packet.src_port, packet.dst_port):
        assert accepts(pfilter, linktype, data)
    else:
        run_bpf(pfilter.bpf_program(linktype), data)  # terminates without error
