# Link-layer, IPv4 and transport dissection of captured frames; pure.
#
# Purpose: turn one frame, as an AF_PACKET socket or a pcap file hands it
# over, into a CapturedPacket, or None when it cannot carry an SPA message.
# This is the Python side of server/process_packet.c (spa-protocol.md 5.2).
#
# Strategy: find the offset of the IPv4 header from the link type, following
# 802.1Q / 802.1ad tags, PPPoE session and 802.2 SNAP encapsulations on
# Ethernet. Then check every header length against the bytes that are really
# there before reading a field. Every fixed-size read is preceded by a length
# check and slices never raise, so no input (truncated, oversized, lying
# lengths) can raise.
#
# Invariants: the payload never runs past the IP total length (so Ethernet FCS
# trailers are ignored, fwknop issue #163), past the UDP length, or past the
# captured bytes; fragments are refused; a payload is 1..MAX_PAYLOAD bytes.
# pfilter.py generates a kernel BPF program that follows exactly the same
# encapsulations, so the kernel never drops a frame this module would accept.

from __future__ import annotations

import struct
from enum import IntEnum
from ipaddress import IPv4Address

from fwknopd_uci.model import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, CapturedPacket

__all__ = [
    "DLT_EN10MB",
    "DLT_LINUX_SLL",
    "DLT_LOOP",
    "DLT_NULL",
    "DLT_PPP",
    "DLT_PPP_ETHER",
    "DLT_RAW",
    "ETH_P_8021AD",
    "ETH_P_8021Q",
    "ETH_P_IP",
    "ETH_P_PPP_SES",
    "MAX_PAYLOAD",
    "MAX_VLAN_TAGS",
    "PPP_IP",
    "SNAP_LEN",
    "LinkType",
    "parse_frame",
]

# MAX_SPA_PACKET_LEN: fwknopd ignores longer payloads (spa-protocol.md 5.3).
MAX_PAYLOAD = 1500
# Largest frame we ever ask the kernel for (an IPv4 packet is at most 65535).
SNAP_LEN = 65535
# Two tags cover QinQ as written in a pcap file; live, the kernel has already
# moved the outer tag into the skb metadata, so at most one remains in data.
MAX_VLAN_TAGS = 2

ETH_P_IP = 0x0800
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_PPP_SES = 0x8864
PPP_IP = 0x0021  # PPP protocol number of IPv4 (RFC 1332)
_VLAN_TYPES = (ETH_P_8021Q, ETH_P_8021AD)
_ETH_MAX_LENGTH = 1500  # EtherType values up to this are 802.3 length fields
_SNAP_HEADER = b"\xaa\xaa\x03\x00\x00\x00"  # LLC DSAP/SSAP/UI + OUI 00-00-00
_PPPOE_HEADER_LEN = 6
_AF_INET = 2  # the BSD loopback header's family value for IPv4

_IP_MIN_HEADER = 20
_IP_FRAGMENT_BITS = 0x3FFF  # "more fragments" flag plus the 13-bit offset
_UDP_HEADER = 8
_TCP_MIN_HEADER = 20
_ICMP_HEADER = 8

_U16 = struct.Struct("!H")
_UDP = struct.Struct("!HHH")
_TCP_PORTS = struct.Struct("!HH")


class LinkType(IntEnum):
    """pcap data-link types (DLT_* / LINKTYPE_*) that parse_frame understands."""

    NULL = 0  # BSD loopback: 4-byte address family in host byte order
    EN10MB = 1  # Ethernet, with 802.1Q/802.1ad tags, PPPoE session, SNAP
    PPP = 9  # PPP, with or without the ff 03 address/control bytes
    RAW_12 = 12  # raw IPv4 (DLT_RAW as numbered on some systems)
    RAW_14 = 14  # raw IPv4 (DLT_RAW as numbered on others)
    PPP_ETHER = 51  # PPPoE header (6 bytes) + PPP protocol (2 bytes)
    RAW = 101  # raw IPv4 (LINKTYPE_RAW, what pcap files use)
    LOOP = 108  # OpenBSD loopback: address family in network byte order
    LINUX_SLL = 113  # Linux cooked capture, 16-byte header


DLT_NULL = LinkType.NULL
DLT_EN10MB = LinkType.EN10MB
DLT_PPP = LinkType.PPP
DLT_PPP_ETHER = LinkType.PPP_ETHER
DLT_RAW = LinkType.RAW
DLT_LOOP = LinkType.LOOP
DLT_LINUX_SLL = LinkType.LINUX_SLL


def parse_frame(linktype: int, frame: bytes) -> CapturedPacket | None:
    """Extract the transport payload of one captured frame.

    Args:
        linktype: the pcap data-link type of ``frame`` (a LinkType value).
        frame: the captured bytes, starting at the link-layer header.

    Returns:
        The packet, or None for anything that is not an unfragmented IPv4
        UDP, TCP or ICMP packet carrying 1..MAX_PAYLOAD payload bytes, and
        for unknown link types. Never raises on any ``bytes`` input.
    """
    offset = _ip_offset(linktype, frame)
    if offset is None:
        return None
    return _parse_ipv4(frame, offset)


def _ip_offset(linktype: int, frame: bytes) -> int | None:
    """Offset of the IPv4 header in ``frame``, or None if it carries none."""
    if linktype == LinkType.EN10MB:
        return _ethernet(frame)
    if linktype == LinkType.LINUX_SLL:
        # The protocol field sits at 14 after pkttype, hatype, halen, addr[8].
        return _ethertype_chain(frame, 14)
    if linktype in (LinkType.RAW, LinkType.RAW_12, LinkType.RAW_14):
        return 0
    if linktype == LinkType.NULL:
        # Host byte order of the capturing machine, so accept either order.
        if frame[:4] in (_AF_INET.to_bytes(4, "little"), _AF_INET.to_bytes(4, "big")):
            return 4
        return None
    if linktype == LinkType.LOOP:
        return 4 if frame[:4] == _AF_INET.to_bytes(4, "big") else None
    if linktype == LinkType.PPP:
        return _ppp(frame)
    if linktype == LinkType.PPP_ETHER:
        # The PPPoE link type of fwknop issue #366: IP starts at offset 8.
        return _pppoe(frame, 0)
    return None


def _u16(frame: bytes, offset: int) -> int | None:
    if len(frame) < offset + 2:
        return None
    value: int = _U16.unpack_from(frame, offset)[0]
    return value


def _ethernet(frame: bytes) -> int | None:
    etype = _u16(frame, 12)
    if etype is not None and etype <= _ETH_MAX_LENGTH:
        # 802.3 length field: only LLC/SNAP-encapsulated IPv4 is useful
        # (process_packet.c's 802.3/SNAP adjustment, spa-protocol.md 5.2).
        if frame[14:20] == _SNAP_HEADER and _u16(frame, 20) == ETH_P_IP:
            return 22
        return None
    return _ethertype_chain(frame, 12)


def _ethertype_chain(frame: bytes, type_offset: int) -> int | None:
    """Follow VLAN tags and PPPoE from the EtherType field at type_offset."""
    offset = type_offset
    for _ in range(MAX_VLAN_TAGS + 1):
        etype = _u16(frame, offset)
        if etype == ETH_P_IP:
            return offset + 2
        if etype == ETH_P_PPP_SES:
            return _pppoe(frame, offset + 2)
        if etype not in _VLAN_TYPES:
            return None
        # A tag is TPID (already read) + TCI, then the next EtherType.
        offset += 4
    return None


def _pppoe(frame: bytes, offset: int) -> int | None:
    # 6-byte PPPoE session header, then the 2-byte PPP protocol (RFC 2516).
    proto_at = offset + _PPPOE_HEADER_LEN
    return proto_at + 2 if _u16(frame, proto_at) == PPP_IP else None


def _ppp(frame: bytes) -> int | None:
    # DLT_PPP: optional HDLC address/control bytes ff 03, then the protocol,
    # which is a single odd byte when protocol-field compression is used.
    offset = 2 if frame[:2] == b"\xff\x03" else 0
    if len(frame) <= offset:
        return None
    if frame[offset] & 1:
        return offset + 1 if frame[offset] == PPP_IP else None
    return offset + 2 if _u16(frame, offset) == PPP_IP else None


def _parse_ipv4(frame: bytes, offset: int) -> CapturedPacket | None:
    if len(frame) - offset < _IP_MIN_HEADER:
        return None
    version_ihl = frame[offset]
    header_len = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4 or header_len < _IP_MIN_HEADER:
        return None
    total_len = _U16.unpack_from(frame, offset + 2)[0]
    end = offset + total_len
    # The packet ends at the IP total length, not at the end of the frame
    # (fwknop issue #163: a 4-byte Ethernet FCS must not reach the payload).
    # A total length beyond the captured bytes is a lie or a truncation.
    if total_len < header_len or end > len(frame):
        return None
    if _U16.unpack_from(frame, offset + 6)[0] & _IP_FRAGMENT_BITS:
        return None  # a fragment holds only part of the message
    proto = frame[offset + 9]
    l4 = offset + header_len
    if proto == IPPROTO_UDP:
        if end - l4 < _UDP_HEADER:
            return None
        src_port, dst_port, udp_len = _UDP.unpack_from(frame, l4)
        # Cut at the UDP length like the kernel's UDP stack does, and refuse
        # a UDP length that claims more than the IP packet holds.
        if udp_len < _UDP_HEADER or l4 + udp_len > end:
            return None
        start, end = l4 + _UDP_HEADER, l4 + udp_len
    elif proto == IPPROTO_TCP:
        if end - l4 < _TCP_MIN_HEADER:
            return None
        src_port, dst_port = _TCP_PORTS.unpack_from(frame, l4)
        data_offset = (frame[l4 + 12] >> 4) * 4
        if data_offset < _TCP_MIN_HEADER or l4 + data_offset > end:
            return None
        # Segment data after the data offset; no stream reassembly, as the
        # C server does (spa-protocol.md 5.2).
        start = l4 + data_offset
    elif proto == IPPROTO_ICMP:
        if end - l4 < _ICMP_HEADER:
            return None
        src_port = dst_port = 0
        start = l4 + _ICMP_HEADER  # the body after type, code, checksum, id/seq
    else:
        return None
    payload = frame[start:end]
    if not payload or len(payload) > MAX_PAYLOAD:
        return None  # fwknopd silently ignores payloads over 1500 bytes (5.3)
    return CapturedPacket(
        src_ip=IPv4Address(frame[offset + 12 : offset + 16]),
        dst_ip=IPv4Address(frame[offset + 16 : offset + 20]),
        proto=proto,
        src_port=src_port,
        dst_port=dst_port,
        payload=bytes(payload),
    )
