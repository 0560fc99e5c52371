# capture/: how packets get in (spa-protocol.md 5.2).
#
#   frames.py      pure link-layer / IPv4 / transport dissection -> CapturedPacket
#   pfilter.py     PCAP_FILTER parsing, the Python predicate, classic BPF
#   sniffer.py     live AF_PACKET socket with that BPF attached (default mode)
#   udp_server.py  UDP-server mode, with each datagram's real destination
#   pcap_file.py   --pcap-file and -vvv dumps; the only user of scapy
#
# Importing this package does not import scapy: pcap_file.py loads it lazily,
# so the live path stays at the ~12 MB RSS of a bare packet socket.

from __future__ import annotations

from typing import Protocol

from fwknopd_uci.capture.frames import (
    DLT_EN10MB,
    DLT_LINUX_SLL,
    DLT_LOOP,
    DLT_NULL,
    DLT_PPP,
    DLT_PPP_ETHER,
    DLT_RAW,
    MAX_PAYLOAD,
    SNAP_LEN,
    LinkType,
    parse_frame,
)
from fwknopd_uci.capture.pcap_file import dissect, read_pcap
from fwknopd_uci.capture.pfilter import DEFAULT_FILTER, SUPPORTED_FORMS, PacketFilter
from fwknopd_uci.capture.sniffer import CaptureError, Sniffer, link_type_for
from fwknopd_uci.capture.udp_server import UdpServer
from fwknopd_uci.model import CapturedPacket

__all__ = [
    "DEFAULT_FILTER",
    "DLT_EN10MB",
    "DLT_LINUX_SLL",
    "DLT_LOOP",
    "DLT_NULL",
    "DLT_PPP",
    "DLT_PPP_ETHER",
    "DLT_RAW",
    "MAX_PAYLOAD",
    "SNAP_LEN",
    "SUPPORTED_FORMS",
    "CaptureError",
    "LinkType",
    "PacketFilter",
    "PacketSource",
    "Sniffer",
    "UdpServer",
    "dissect",
    "link_type_for",
    "parse_frame",
    "read_pcap",
]


class PacketSource(Protocol):
    """What the daemon's select() loop needs from Sniffer and UdpServer.

    recv() raises BlockingIOError when nothing is queued and returns None for
    a frame that was read but is not SPA-shaped, so the loop is: on
    readable, call recv() until BlockingIOError (with a cap per wake-up).
    """

    def fileno(self) -> int: ...

    def recv(self) -> CapturedPacket | None: ...

    def close(self) -> None: ...
