# PCAP_FILTER: parsing, the Python predicate, and classic BPF generation.
#
# Purpose: fwknopd hands PCAP_FILTER (default "udp port 62201", spa-protocol.md
# 5.2) to libpcap's compiler. We accept only the small subset that SPA set-ups
# use, refuse everything else with a clear message, and compile it ourselves
# into a kernel socket filter so no libpcap, tcpdump or scapy is needed at run
# time (fwknop-2.6.10-observed.md 7: AF_PACKET + SO_ATTACH_FILTER costs about 12 MB).
#
# Strategy: PacketFilter is a frozen value (protocol or both, port, dst-only).
# bpf_program() emits a fixed-shape classic BPF program: drop outgoing frames
# (ancillary pkttype load), find the IPv4 header for the link type (the same
# VLAN / PPPoE / SNAP walk as frames.py), put its offset in X, then check the
# IP version, header length, protocol, fragment bits and the port(s) with
# X-relative loads. A tiny label assembler resolves the forward jumps.
#
# Invariant: for every frame, parse_frame() accepting it and matches() saying
# yes implies the BPF program accepts it (the kernel never drops a frame the
# Python side wants). The BPF may accept more (bad lengths, empty payloads);
# Python drops those after the receive.

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from fwknopd_uci.capture.frames import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_IP,
    ETH_P_PPP_SES,
    MAX_VLAN_TAGS,
    PPP_IP,
    SNAP_LEN,
    LinkType,
)
from fwknopd_uci.model import IPPROTO_TCP, IPPROTO_UDP

__all__ = ["DEFAULT_FILTER", "SUPPORTED_FORMS", "PacketFilter"]

DEFAULT_FILTER = "udp port 62201"  # fwknopd's PCAP_FILTER default (5.2)
SUPPORTED_FORMS = (
    "udp port N",
    "udp dst port N",
    "tcp port N",
    "tcp dst port N",
    "port N",
    "dst port N",
)
_FILTER_RE = re.compile(r"\s*(?:(udp|tcp)\s+)?(dst\s+)?port\s+([0-9]{1,5})\s*", re.IGNORECASE)
_PROTO_NAMES = {"udp": IPPROTO_UDP, "tcp": IPPROTO_TCP}

# Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
_LD, _LDX, _ALU, _JMP, _RET, _MISC = 0x00, 0x01, 0x04, 0x05, 0x06, 0x07
_W, _H, _B = 0x00, 0x08, 0x10
_IMM, _ABS, _IND = 0x00, 0x20, 0x40
_AND, _LSH, _ADD = 0x50, 0x60, 0x00
_JA, _JEQ, _JGT, _JGE, _JSET = 0x00, 0x10, 0x20, 0x30, 0x40
_K, _X = 0x00, 0x08
_TAX = 0x00
# Ancillary load of skb->pkt_type: SKF_AD_OFF (-0x1000) + SKF_AD_PKTTYPE (4).
_SKF_AD_PKTTYPE = (-0x1000 + 4) & 0xFFFFFFFF
_PACKET_OUTGOING = 4
_SNAP_LLC_OUI_HI = 0xAAAA0300  # LLC AA AA 03 and the first OUI byte
_SOCK_FILTER = struct.Struct("=HBBI")  # struct sock_filter {code, jt, jf, k}
_BPF_MAXINSNS = 4096

_ACCEPT, _REJECT, _IP = "accept", "reject", "ip"


@dataclass(frozen=True, slots=True)
class PacketFilter:
    """One supported PCAP_FILTER: a protocol (or TCP and UDP), a port, a direction.

    Attributes:
        proto: IPPROTO_UDP, IPPROTO_TCP, or None for either ("port N").
        port: the port, 1..65535.
        dst_only: True for the "dst port" forms; otherwise either the source
            or the destination port may match, as in libpcap.
    """

    proto: int | None
    port: int
    dst_only: bool = False

    def __post_init__(self) -> None:
        if self.proto not in (None, IPPROTO_UDP, IPPROTO_TCP):
            raise ValueError(f"unsupported filter protocol {self.proto!r}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"filter port out of range 1-65535: {self.port}")

    @classmethod
    def parse(cls, text: str) -> PacketFilter:
        """Parse a PCAP_FILTER value (case-insensitive, any spacing).

        Raises:
            ValueError: the text is not one of SUPPORTED_FORMS or the port is
                not 1..65535; the message quotes the filter and lists the
                supported forms, for a start-up error.
        """
        match = _FILTER_RE.fullmatch(text)
        port = int(match.group(3)) if match else 0
        if match is None or not 1 <= port <= 65535:
            forms = ", ".join(f'"{form}"' for form in SUPPORTED_FORMS)
            raise ValueError(
                f"unsupported PCAP_FILTER {text!r}: the supported forms are {forms}"
                " (N is a port 1-65535)"
            )
        proto_name = match.group(1)
        proto = _PROTO_NAMES[proto_name.lower()] if proto_name else None
        return cls(proto=proto, port=port, dst_only=match.group(2) is not None)

    def __str__(self) -> str:
        words = []
        if self.proto is not None:
            words.append("udp" if self.proto == IPPROTO_UDP else "tcp")
        if self.dst_only:
            words.append("dst")
        words += ["port", str(self.port)]
        return " ".join(words)

    def matches(self, proto: int, src_port: int, dst_port: int) -> bool:
        """True when a packet with these fields passes the filter.

        "port N" means TCP or UDP (never ICMP, which has no ports).
        """
        if self.proto is None:
            if proto not in (IPPROTO_UDP, IPPROTO_TCP):
                return False
        elif proto != self.proto:
            return False
        return dst_port == self.port or (not self.dst_only and src_port == self.port)

    def bpf_program(self, link: LinkType | int) -> bytes:
        """Compile to a classic BPF program for SO_ATTACH_FILTER.

        The program accepts (snap SNAP_LEN) inbound IPv4 frames of ``link``
        whose fragment offset and "more fragments" bit are zero and whose
        protocol and port(s) match; it rejects PACKET_OUTGOING copies via the
        pkttype ancillary load. For an AF_PACKET SOCK_DGRAM socket use
        LinkType.RAW: the filter then sees the frame from the IP header on.

        Returns:
            The packed ``struct sock_filter`` array (8 bytes per instruction,
            native byte order).

        Raises:
            ValueError: ``link`` is not a LinkType.
        """
        prog = _Program()
        # Inbound only, like pcap_setdirection(PCAP_D_IN) (spa-protocol.md 5.2).
        prog.op(_LD | _W | _ABS, _SKF_AD_PKTTYPE)
        prog.op(_JMP | _JEQ | _K, _PACKET_OUTGOING, jt=_REJECT)
        _emit_link(prog, LinkType(link))
        prog.emit_ip_stubs()
        self._emit_ip(prog)
        prog.label(_ACCEPT)
        prog.op(_RET | _K, SNAP_LEN)
        prog.label(_REJECT)
        prog.op(_RET | _K, 0)
        return prog.assemble()

    def _emit_ip(self, prog: _Program) -> None:
        # Entered with X = offset of the IPv4 header.
        prog.label(_IP)
        prog.op(_LD | _B | _IND, 0)
        prog.op(_ALU | _AND | _K, 0xF0)
        prog.op(_JMP | _JEQ | _K, 0x40, jf=_REJECT)  # IPv4 only
        prog.op(_LD | _B | _IND, 0)
        prog.op(_ALU | _AND | _K, 0x0F)
        prog.op(_JMP | _JGE | _K, 5, jf=_REJECT)  # IHL of at least 20 bytes
        prog.op(_LD | _B | _IND, 9)
        if self.proto is None:
            prog.op(_JMP | _JEQ | _K, IPPROTO_UDP, jt="fragments")
            prog.op(_JMP | _JEQ | _K, IPPROTO_TCP, jf=_REJECT)
        else:
            prog.op(_JMP | _JEQ | _K, self.proto, jf=_REJECT)
        prog.label("fragments")
        # Skip fragments: a non-zero offset has no ports, and a first fragment
        # (MF set) carries only part of the message; frames.py refuses both.
        prog.op(_LD | _H | _IND, 6)
        prog.op(_JMP | _JSET | _K, 0x3FFF, jt=_REJECT)
        # X += 4 * IHL (variable header length, IP options).
        prog.op(_LD | _B | _IND, 0)
        prog.op(_ALU | _AND | _K, 0x0F)
        prog.op(_ALU | _LSH | _K, 2)
        prog.op(_ALU | _ADD | _X)
        prog.op(_MISC | _TAX)
        if not self.dst_only:
            prog.op(_LD | _H | _IND, 0)
            prog.op(_JMP | _JEQ | _K, self.port, jt=_ACCEPT)
        prog.op(_LD | _H | _IND, 2)
        prog.op(_JMP | _JEQ | _K, self.port, jt=_ACCEPT, jf=_REJECT)


def _emit_link(prog: _Program, link: LinkType) -> None:
    """Emit the link-layer walk; every path ends in an IP stub or reject."""
    if link == LinkType.EN10MB:
        _emit_ethertype_chain(prog, 12, snap=True)
    elif link == LinkType.LINUX_SLL:
        _emit_ethertype_chain(prog, 14, snap=False)
    elif link in (LinkType.RAW, LinkType.RAW_12, LinkType.RAW_14):
        prog.op(_JMP | _JA, jt=prog.goto_ip(0))
    elif link in (LinkType.NULL, LinkType.LOOP):
        prog.op(_LD | _W | _ABS, 0)
        prog.op(_JMP | _JEQ | _K, 2, jt=prog.goto_ip(4))  # AF_INET, big-endian
        if link == LinkType.NULL:  # host byte order: little-endian too
            prog.op(_JMP | _JEQ | _K, 0x02000000, jt=prog.goto_ip(4))
        prog.op(_JMP | _JA, jt=_REJECT)
    elif link == LinkType.PPP:
        prog.op(_LD | _H | _ABS, 0)
        prog.op(_JMP | _JEQ | _K, 0xFF03, jt="ppp@2")
        for base in (0, 2):
            if base:
                prog.label(f"ppp@{base}")
            prog.op(_LD | _B | _ABS, base)
            prog.op(_JMP | _JSET | _K, 1, jt=f"pfc@{base}")
            prog.op(_LD | _H | _ABS, base)
            prog.op(_JMP | _JEQ | _K, PPP_IP, jt=prog.goto_ip(base + 2), jf=_REJECT)
            prog.label(f"pfc@{base}")  # compressed 1-byte protocol, still in A
            prog.op(_JMP | _JEQ | _K, PPP_IP, jt=prog.goto_ip(base + 1), jf=_REJECT)
    elif link == LinkType.PPP_ETHER:
        _emit_pppoe(prog, 0)  # fwknop issue #366: IP at offset 8
    else:  # pragma: no cover - LinkType() above already refused other values
        raise ValueError(f"no BPF link-layer walk for {link!r}")


def _emit_ethertype_chain(prog: _Program, type_offset: int, *, snap: bool) -> None:
    pppoe_offsets = []
    for depth in range(MAX_VLAN_TAGS + 1):
        offset = type_offset + 4 * depth
        if depth:
            prog.label(f"type@{offset}")
        prog.op(_LD | _H | _ABS, offset)
        prog.op(_JMP | _JEQ | _K, ETH_P_IP, jt=prog.goto_ip(offset + 2))
        prog.op(_JMP | _JEQ | _K, ETH_P_PPP_SES, jt=f"pppoe@{offset + 2}")
        pppoe_offsets.append(offset + 2)
        if depth < MAX_VLAN_TAGS:
            for tpid in (ETH_P_8021Q, ETH_P_8021AD):
                prog.op(_JMP | _JEQ | _K, tpid, jt=f"type@{offset + 4}")
        if snap and depth == 0:
            # 802.3 length field + LLC/SNAP header with OUI 0 and type IPv4.
            prog.op(_JMP | _JGT | _K, 1500, jt=_REJECT)
            prog.op(_LD | _W | _ABS, offset + 2)
            prog.op(_JMP | _JEQ | _K, _SNAP_LLC_OUI_HI, jf=_REJECT)
            prog.op(_LD | _H | _ABS, offset + 6)
            prog.op(_JMP | _JEQ | _K, 0, jf=_REJECT)
            prog.op(_LD | _H | _ABS, offset + 8)
            prog.op(_JMP | _JEQ | _K, ETH_P_IP, jt=prog.goto_ip(offset + 10))
        prog.op(_JMP | _JA, jt=_REJECT)
    for offset in pppoe_offsets:
        _emit_pppoe(prog, offset)


def _emit_pppoe(prog: _Program, offset: int) -> None:
    # 6-byte PPPoE session header, then PPP protocol 0x0021 (IPv4).
    if offset:
        prog.label(f"pppoe@{offset}")
    prog.op(_LD | _H | _ABS, offset + 6)
    prog.op(_JMP | _JEQ | _K, PPP_IP, jt=prog.goto_ip(offset + 8), jf=_REJECT)


class _Program:
    """A classic BPF program under construction, with forward-jump labels."""

    def __init__(self) -> None:
        self._insns: list[tuple[int, int, str | None, str | None]] = []
        self._labels: dict[str, int] = {}
        self._ip_offsets: list[int] = []

    def label(self, name: str) -> None:
        if name in self._labels:
            raise RuntimeError(f"BPF label {name!r} defined twice")
        self._labels[name] = len(self._insns)

    def op(self, code: int, k: int = 0, *, jt: str | None = None, jf: str | None = None) -> None:
        # For BPF_JA the target travels in jt and becomes k at assembly.
        self._insns.append((code, k, jt, jf))

    def goto_ip(self, offset: int) -> str:
        """Label of a stub that sets X = offset and enters the IP checks."""
        if offset not in self._ip_offsets:
            self._ip_offsets.append(offset)
        return f"ip@{offset}"

    def emit_ip_stubs(self) -> None:
        for offset in sorted(self._ip_offsets):
            self.label(f"ip@{offset}")
            self.op(_LDX | _W | _IMM, offset)
            self.op(_JMP | _JA, jt=_IP)

    def assemble(self) -> bytes:
        if len(self._insns) > _BPF_MAXINSNS:
            raise RuntimeError("BPF program too long")
        out = bytearray()
        for index, (code, k, jt, jf) in enumerate(self._insns):
            if code == _JMP | _JA:
                k, jt_off, jf_off = self._distance(index, jt, 0xFFFFFFFF), 0, 0
            else:
                jt_off, jf_off = self._distance(index, jt, 255), self._distance(index, jf, 255)
            out += _SOCK_FILTER.pack(code, jt_off, jf_off, k)
        return bytes(out)

    def _distance(self, index: int, target: str | None, limit: int) -> int:
        # Classic BPF only jumps forward, relative to the next instruction.
        if target is None:
            return 0
        if target not in self._labels:
            raise RuntimeError(f"BPF label {target!r} never defined")
        distance = self._labels[target] - index - 1
        if not 0 <= distance <= limit:
            raise RuntimeError(f"BPF jump to {target!r} out of range: {distance}")
        return distance
