# capture/: how packets get in (spa-protocol.md 5.2).
#
#   frames.py      pure link-layer / IPv4 / transport dissection -> CapturedPacket
#   pfilter.py     PCAP_FILTER parsing, the Python predicate, classic BPF
#   sniffer.py     live AF_PACKET socket with that BPF attached (default mode)
#   udp_server.py  UDP-server mode, with each datagram's real destination
#   pcap_file.py   --pcap-file and -vvv dumps; the only user of scapy
#
# Importing this package imports neither scapy nor pcap_file.py: read_pcap()
# and dissect() below load pcap_file.py on first call, and it loads scapy
# lazily in turn, so the live path (sniffer, UDP server) pays for neither.

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
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


def read_pcap(path: str | Path, pfilter: PacketFilter | None, *,
              on_frame: Callable[[int, bytes], None] | None = None) -> Iterator[CapturedPacket]:
    """The SPA candidates in a pcap or pcapng file; see pcap_file.read_pcap."""
    # Offline only (--pcap-file): kept out of the live path's imports (RSS budget).
    from fwknopd_uci.capture import pcap_file

    return pcap_file.read_pcap(path, pfilter, on_frame=on_frame)


def dissect(linktype: int, frame: bytes) -> str:
    """scapy's multi-line field dump of one frame (-vvv); see pcap_file.dissect."""
    # Debug dumps only: kept out of the live path's imports (RSS budget).
    from fwknopd_uci.capture import pcap_file

    return pcap_file.dissect(linktype, frame)
