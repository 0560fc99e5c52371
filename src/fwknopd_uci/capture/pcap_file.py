# Offline input (--pcap-file) and scapy frame dumps (-vvv).
#
# Purpose: read SPA candidates from a pcap or pcapng capture file, as
# `fwknopd --pcap-file` does (spa-protocol.md 5.2), and render a frame as
# scapy's multi-line dissection for the most verbose log level.
#
# Strategy: scapy is used only for what it is good at offline: its raw pcap
# readers hand over (bytes, metadata) records, and every record goes through
# the same parse_frame() and PacketFilter.matches() as live traffic, so a file
# and the wire give the same packets. scapy is imported lazily inside the
# functions: this module may be imported by the package, but the live path
# must never load scapy (52-84 MB RSS, fwknop-2.6.10-observed.md 7).
#
# Invariants: scapy appears in sys.modules only after read_pcap() or
# dissect() ran; read_pcap() yields exactly what parse_frame() accepts and the
# filter matches, in file order.

from __future__ import annotations

import errno
import importlib
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fwknopd_uci.capture.frames import LinkType, parse_frame
from fwknopd_uci.capture.pfilter import PacketFilter
from fwknopd_uci.capture.sniffer import CaptureError
from fwknopd_uci.model import CapturedPacket

if TYPE_CHECKING:
    from scapy.utils import RawPcapReader

__all__ = ["dissect", "read_pcap"]


def read_pcap(path: str | Path, pfilter: PacketFilter | None, *,
              on_frame: Callable[[int, bytes], None] | None = None) -> Iterator[CapturedPacket]:
    """The SPA candidates in a pcap or pcapng file, in file order.

    Args:
        path: the capture file. Each record is read with its own link type
            (pcapng files may mix interfaces).
        pfilter: the PCAP_FILTER to apply, as fwknopd applies PCAP_FILTER to
            a file too; None yields every parsed packet.
        on_frame: called with (link type, frame) for every packet yielded,
            just before it is (for -vvv dumps).

    Raises:
        CaptureError: the file cannot be opened or is not a capture file
            (raised by this call, before iteration starts), or it is corrupt
            beyond a truncated last record (raised during iteration).
    """
    reader = _open(Path(path))
    return _records(reader, Path(path), pfilter, on_frame)


def dissect(linktype: int, frame: bytes) -> str:
    """scapy's multi-line field dump of one frame, for -vvv logging.

    Unknown link types, and frames scapy cannot decode, are shown as raw bytes.
    """
    from scapy.config import conf
    from scapy.error import Scapy_Exception

    _load_layers()
    layer = conf.l2types.num2layer.get(linktype)
    if layer is None and linktype in (LinkType.RAW, LinkType.RAW_12, LinkType.RAW_14):
        from scapy.layers.inet import IP

        layer = IP
    if layer is None:
        layer = conf.raw_layer
    try:
        text = layer(frame).show(dump=True)
    except (Scapy_Exception, struct.error, ValueError, TypeError, IndexError, KeyError):
        # scapy is tolerant but not guaranteed total on garbage; a debug
        # dump must never take the daemon down.
        text = conf.raw_layer(frame).show(dump=True)
    return str(text)


def _open(path: Path) -> RawPcapReader:
    from scapy.error import Scapy_Exception
    from scapy.utils import RawPcapReader

    try:
        # RawPcapReader switches to its pcapng reader by the file's magic.
        return RawPcapReader(str(path))
    except OSError as exc:
        raise CaptureError(
            exc.errno or errno.EIO, f"cannot read pcap file {str(path)!r}: {exc.strerror or exc}"
        ) from exc
    except Scapy_Exception as exc:
        raise CaptureError(errno.EINVAL, f"cannot read pcap file {str(path)!r}: {exc}") from exc


def _records(
    reader: RawPcapReader, path: Path, pfilter: PacketFilter | None,
    on_frame: Callable[[int, bytes], None] | None = None,
) -> Iterator[CapturedPacket]:
    from scapy.error import Scapy_Exception

    file_linktype = int(getattr(reader, "linktype", -1))
    try:
        with reader:
            for frame, meta in reader:
                # pcapng metadata carries the interface's link type.
                linktype = int(getattr(meta, "linktype", file_linktype))
                packet = parse_frame(linktype, bytes(frame))
                if packet is None:
                    continue
                if pfilter is None or pfilter.matches(
                    packet.proto, packet.src_port, packet.dst_port
                ):
                    if on_frame is not None:
                        on_frame(linktype, bytes(frame))
                    yield packet
    except Scapy_Exception as exc:
        raise CaptureError(errno.EINVAL, f"corrupt pcap file {str(path)!r}: {exc}") from exc


def _load_layers() -> None:
    # Registers the link types and protocol bindings dissect() needs without
    # the 1.4 s / 84 MB of scapy.all.
    for name in ("scapy.layers.l2", "scapy.layers.inet", "scapy.layers.ppp"):
        importlib.import_module(name)
