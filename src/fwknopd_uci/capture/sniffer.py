# Live capture on an AF_PACKET socket with a kernel BPF filter.
#
# Purpose: the default acquisition mode of fwknopd (pcap on PCAP_INTF with
# PCAP_FILTER, inbound only, promiscuous only on request; spa-protocol.md 5.2)
# without libpcap or scapy: a plain packet socket costs about 12 MB RSS where
# scapy's live path costs 52-84 MB (fwknop-2.6.10-observed.md 7).
#
# Strategy: read the device's ARPHRD type; Ethernet and loopback devices get a
# SOCK_RAW socket (frames with their Ethernet header), every other device a
# SOCK_DGRAM socket bound to ETH_P_IP (the kernel strips the link header, so
# frames start at the IP header). The socket is created with protocol 0, which
# queues nothing; the BPF program is attached and only then the socket is bound
# to the device and a protocol, so no unfiltered frame is ever queued. The
# socket is non-blocking: the daemon select()s on fileno() and calls recv()
# until it raises BlockingIOError. There is no sleep or dispatch-count loop,
# unlike the C daemon's 100-packets-per-100-ms cap (fwknop-2.6.10-observed.md 6).
#
# Invariants: only inbound frames (PACKET_OUTGOING is dropped in the BPF and
# again here); every receive is bounded by SNAP_LEN; what recv() returns has
# passed parse_frame() and PacketFilter.matches().

from __future__ import annotations

import ctypes
import errno
import fcntl
import socket
import struct
from types import TracebackType
from typing import Self

from fwknopd_uci.capture.frames import SNAP_LEN, LinkType, parse_frame
from fwknopd_uci.capture.pfilter import PacketFilter
from fwknopd_uci.model import CapturedPacket

__all__ = ["CaptureError", "Sniffer", "link_type_for"]

# Linux constants that Python 3.11's socket module does not export.
_SO_ATTACH_FILTER = 26
_SOL_PACKET = 263
_PACKET_ADD_MEMBERSHIP = 1
_PACKET_MR_PROMISC = 1
_PACKET_OUTGOING = 4
_ETH_P_ALL = 0x0003
_ETH_P_IP = 0x0800
_SIOCGIFHWADDR = 0x8927
_IFNAMSIZ = 16
_ARPHRD_ETHER = 1
_ARPHRD_LOOPBACK = 772  # lo carries a zeroed 14-byte Ethernet header


class CaptureError(OSError):
    """A capture source could not be opened; the message names the source."""


def link_type_for(arphrd: int) -> LinkType:
    """Link type of the frames a Sniffer reads from a device of this ARPHRD type.

    Ethernet and loopback devices are read with their Ethernet header
    (EN10MB); PPP, tun and every other device through SOCK_DGRAM, which
    yields the bare IP packet (RAW).
    """
    if arphrd in (_ARPHRD_ETHER, _ARPHRD_LOOPBACK):
        return LinkType.EN10MB
    return LinkType.RAW


class Sniffer:
    """Inbound SPA candidates from one network interface.

    Args:
        ifname: the interface (PCAP_INTF), in the caller's network namespace.
        pfilter: the parsed PCAP_FILTER, compiled into the kernel filter.
        promisc: put the interface in promiscuous mode while the socket is
            open (ENABLE_PCAP_PROMISC; the fwknopd default is off).

    Raises:
        CaptureError: no such interface (ENODEV), not allowed to open a packet
            socket (EPERM: needs root or CAP_NET_RAW), or another socket error;
            the message names the interface.
    """

    def __init__(self, ifname: str, pfilter: PacketFilter, *, promisc: bool = False) -> None:
        self.ifname = ifname
        self.pfilter = pfilter
        _check_ifname(ifname)
        self.link = link_type_for(_arphrd_type(ifname))
        raw = self.link == LinkType.EN10MB
        kind = socket.SOCK_RAW if raw else socket.SOCK_DGRAM
        try:
            # Protocol 0: nothing is queued until bind() names a protocol.
            self._sock = socket.socket(socket.AF_PACKET, kind, 0)
        except OSError as exc:
            raise _capture_error(exc, f"cannot open a packet socket for {ifname!r}") from exc
        try:
            _attach_filter(self._sock, pfilter.bpf_program(self.link))
            # ETH_P_ALL on Ethernet so VLAN and PPPoE frames reach the filter.
            self._sock.bind((ifname, _ETH_P_ALL if raw else _ETH_P_IP))
            if promisc:
                mreq = struct.pack(
                    "iHH8s", socket.if_nametoindex(ifname), _PACKET_MR_PROMISC, 0, b""
                )
                self._sock.setsockopt(_SOL_PACKET, _PACKET_ADD_MEMBERSHIP, mreq)
            self._sock.setblocking(False)
        except OSError as exc:
            self._sock.close()
            raise _capture_error(exc, f"cannot capture on interface {ifname!r}") from exc
        self._buf = bytearray(SNAP_LEN)
        self._view = memoryview(self._buf)

    def fileno(self) -> int:
        """The socket's descriptor, for select()/poll()."""
        return self._sock.fileno()

    def recv(self) -> CapturedPacket | None:
        """Read one queued frame without blocking.

        Returns:
            The packet, or None when a frame was read but is not SPA-shaped
            (outgoing, not IPv4 UDP/TCP/ICMP, a fragment, bad lengths, an
            empty or over-long payload, or not matching the filter). Call
            again: more frames may be queued.

        Raises:
            BlockingIOError: the queue is empty; wait for fileno() to be
                readable again.
            OSError: another socket error. ENETDOWN is reported once when
                the interface goes down; the socket receives again when it
                comes back up. If the interface is deleted, ENETDOWN is also
                reported once, but then nothing arrives until the Sniffer is
                reopened (procd's netdev restart covers that).
        """
        size, address = self._sock.recvfrom_into(self._buf)
        if address[2] == _PACKET_OUTGOING:  # also dropped in the BPF; belt and braces
            return None
        packet = parse_frame(self.link, bytes(self._view[:size]))
        if packet is None or not self.pfilter.matches(
            packet.proto, packet.src_port, packet.dst_port
        ):
            return None
        return packet

    def close(self) -> None:
        """Close the socket (this also ends promiscuous mode). Idempotent."""
        self._view.release()
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _check_ifname(ifname: str) -> None:
    # The kernel's dev_valid_name() rules: 1..15 bytes, no '/', ':' or space.
    encoded = ifname.encode("utf-8", "surrogateescape")
    if (
        not 0 < len(encoded) < _IFNAMSIZ
        or ifname in (".", "..")
        or any(c in ifname for c in "/:")
        or any(c.isspace() for c in ifname)
        or "\0" in ifname
    ):
        raise CaptureError(errno.ENODEV, f"invalid network interface name {ifname!r}")


def _arphrd_type(ifname: str) -> int:
    """The device's ARPHRD type (what /sys/class/net/IF/type shows).

    Asked with SIOCGIFHWADDR so the answer comes from the caller's network
    namespace, whatever /sys happens to be mounted from.
    """
    ifreq = struct.pack("16s16x", ifname.encode("utf-8", "surrogateescape"))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            reply = fcntl.ioctl(probe.fileno(), _SIOCGIFHWADDR, ifreq)
    except OSError as exc:
        if exc.errno == errno.ENODEV:
            raise CaptureError(errno.ENODEV, f"no such network interface {ifname!r}") from exc
        raise _capture_error(exc, f"cannot query interface {ifname!r}") from exc
    family: int = struct.unpack_from("H", reply, 16)[0]  # ifr_hwaddr.sa_family
    return family


def _attach_filter(sock: socket.socket, program: bytes) -> None:
    # struct sock_fprog {unsigned short len; struct sock_filter *filter;}. The
    # kernel copies the instructions during setsockopt, so the buffer only has
    # to live for the duration of the call.
    insns = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HP", len(program) // 8, ctypes.addressof(insns))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def _capture_error(exc: OSError, what: str) -> CaptureError:
    hint = " (needs root or CAP_NET_RAW)" if exc.errno in (errno.EPERM, errno.EACCES) else ""
    return CaptureError(exc.errno or errno.EIO, f"{what}: {exc.strerror or exc}{hint}")
