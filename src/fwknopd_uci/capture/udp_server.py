# UDP-server acquisition mode (ENABLE_UDP_SERVER / -U, spa-protocol.md 5.2).
#
# Purpose: receive SPA datagrams on an ordinary UDP socket, for set-ups that do
# not want a packet socket. Needs no privilege for ports >= 1024.
#
# Strategy: a non-blocking IPv4 datagram socket with IP_PKTINFO, read with
# recvmsg() so each datagram's real destination address comes with it. The C
# daemon records 0.0.0.0 there, which breaks DESTINATION and
# ENABLE_DESTINATION_RULE in this mode (fwknop issue #289); we report the
# address the client actually sent to.
#
# Invariants: at most MAX_PAYLOAD bytes are read per datagram and a longer
# one (MSG_TRUNC) is dropped, never processed truncated; recv() raises
# BlockingIOError when the queue is empty, exactly like Sniffer.recv().

from __future__ import annotations

import socket
from ipaddress import IPv4Address
from types import TracebackType
from typing import Self

from fwknopd_uci.capture.frames import MAX_PAYLOAD
from fwknopd_uci.capture.sniffer import CaptureError
from fwknopd_uci.model import IPPROTO_UDP, CapturedPacket

__all__ = ["UdpServer"]

_IP_PKTINFO = 8  # linux/in.h; Python 3.11's socket module lacks it
# struct in_pktinfo {int ipi_ifindex; struct in_addr ipi_spec_dst, ipi_addr;}
_PKTINFO_LEN = 12
_PKTINFO_ADDR = slice(8, 12)  # ipi_addr: the header's destination address
_CMSG_BUFSIZE = socket.CMSG_SPACE(_PKTINFO_LEN)


class UdpServer:
    """SPA datagrams from a bound UDP socket.

    Args:
        port: UDPSERV_PORT (fwknopd default 62201); 0 lets the kernel choose,
            which tests use; ``port`` then holds the real one.
        bind_address: the local IPv4 address to bind (the C daemon always
            binds 0.0.0.0).

    Raises:
        ValueError: ``port`` out of range or ``bind_address`` not an IPv4
            address literal.
        CaptureError: the socket cannot be bound (address in use, address
            not local, privileged port); the message names address and port.
    """

    def __init__(self, port: int, *, bind_address: str = "0.0.0.0") -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"UDP server port out of range 0-65535: {port}")
        # A literal address only: a host name would mean a DNS lookup.
        IPv4Address(bind_address)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
            self._sock.bind((bind_address, port))
            self._sock.setblocking(False)
        except OSError as exc:
            self._sock.close()
            raise CaptureError(
                exc.errno, f"cannot start the UDP server on {bind_address}:{port}: {exc.strerror}"
            ) from exc
        self.port: int = self._sock.getsockname()[1]
        self._fallback_dst = IPv4Address(self._sock.getsockname()[0])

    def fileno(self) -> int:
        """The socket's descriptor, for select()/poll()."""
        return self._sock.fileno()

    def recv(self) -> CapturedPacket | None:
        """Read one queued datagram without blocking.

        Returns:
            The packet (proto UDP, dst_port the bound port, dst_ip the
            datagram's real destination), or None for a datagram that is not
            SPA-shaped: empty, or longer than MAX_PAYLOAD. Call again: more
            datagrams may be queued.

        Raises:
            BlockingIOError: the queue is empty.
            OSError: another socket error.
        """
        data, ancdata, flags, address = self._sock.recvmsg(MAX_PAYLOAD, _CMSG_BUFSIZE)
        if flags & socket.MSG_TRUNC or not data:
            return None  # over 1500 bytes: fwknopd ignores it (spa-protocol.md 5.3)
        dst_ip = self._fallback_dst
        for level, kind, cdata in ancdata:
            if level == socket.IPPROTO_IP and kind == _IP_PKTINFO and len(cdata) >= _PKTINFO_LEN:
                dst_ip = IPv4Address(cdata[_PKTINFO_ADDR])
        return CapturedPacket(
            src_ip=IPv4Address(address[0]),
            dst_ip=dst_ip,
            proto=IPPROTO_UDP,
            src_port=address[1],
            dst_port=self.port,
            payload=data,
        )

    def close(self) -> None:
        """Close the socket. Idempotent."""
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
