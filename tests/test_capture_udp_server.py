# Tests for capture/udp_server.py with real loopback sockets, inside a network
# namespace made for the test (tests/netns.py); sockets are created in it by
# moving this thread there with setns(2) for the call.

from __future__ import annotations

import contextlib
import ctypes
import errno
import select
import socket
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest
from netns import Namespace, netns, requires_root

from fwknopd_uci.capture.frames import MAX_PAYLOAD
from fwknopd_uci.capture.sniffer import CaptureError
from fwknopd_uci.capture.udp_server import UdpServer
from fwknopd_uci.model import IPPROTO_UDP, CapturedPacket

pytestmark = [pytest.mark.root, requires_root]

WAIT = 3.0  # seconds; the longest any test waits for a datagram
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def inside(ns: Namespace) -> Iterator[None]:
    """Run the block with this thread in ``ns``'s network namespace."""
    with (
        open("/proc/thread-self/ns/net", "rb") as home,
        open(f"/run/netns/{ns.name}", "rb") as target,
    ):
        if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the test namespace failed")
        try:
            yield
        finally:
            if _libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home failed")


@pytest.fixture
def ns() -> Iterator[Namespace]:
    with netns("udp") as made:
        yield made


def server_in(ns: Namespace, bind_address: str = "0.0.0.0", port: int = 0) -> UdpServer:
    with inside(ns):
        return UdpServer(port, bind_address=bind_address)


def send(ns: Namespace, dst: str, port: int, payload: bytes, src: str = "127.0.0.5") -> int:
    """Send one datagram from ``src``; return the source port used."""
    with inside(ns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((src, 0))
        sock.sendto(payload, (dst, port))
        return int(sock.getsockname()[1])


def receive(server: UdpServer, count: int) -> list[CapturedPacket | None]:
    """``count`` recv() results (None included), waiting at most WAIT seconds."""
    results: list[CapturedPacket | None] = []
    deadline = time.monotonic() + WAIT
    while len(results) < count and (left := deadline - time.monotonic()) > 0:
        if not select.select([server], [], [], left)[0]:
            break
        for _ in range(count):
            try:
                results.append(server.recv())
            except BlockingIOError:
                break
    return results


def test_capture_udp_server_reports_real_destination(ns: Namespace) -> None:
    """Bound to 0.0.0.0, each datagram still carries its own destination
    address (the C daemon records 0.0.0.0, fwknop issue 289)."""
    with server_in(ns) as server:
        port2 = send(ns, "127.0.0.2", server.port, b"to two")
        port3 = send(ns, "127.0.0.3", server.port, b"to three")
        got = receive(server, 2)
    assert got == [
        CapturedPacket(
            IPv4Address("127.0.0.5"),
            IPv4Address("127.0.0.2"),
            IPPROTO_UDP,
            port2,
            server.port,
            b"to two",
        ),
        CapturedPacket(
            IPv4Address("127.0.0.5"),
            IPv4Address("127.0.0.3"),
            IPPROTO_UDP,
            port3,
            server.port,
            b"to three",
        ),
    ]


def test_capture_udp_server_bind_address(ns: Namespace) -> None:
    with server_in(ns, bind_address="127.0.0.2") as server:
        send(ns, "127.0.0.3", server.port, b"elsewhere")  # not for this socket
        send(ns, "127.0.0.2", server.port, b"here")
        got = receive(server, 1)
        with pytest.raises(BlockingIOError):
            server.recv()
    assert [(p.dst_ip, p.payload) for p in got if p] == [(IPv4Address("127.0.0.2"), b"here")]


def test_capture_udp_server_empty_queue_raises_blocking(ns: Namespace) -> None:
    with server_in(ns) as server:
        with pytest.raises(BlockingIOError):
            server.recv()
        assert server.fileno() >= 0


def test_capture_udp_server_size_bounds(ns: Namespace) -> None:
    """Over 1500 bytes and empty datagrams are read and dropped, never truncated."""
    with server_in(ns) as server:
        send(ns, "127.0.0.1", server.port, b"x" * (MAX_PAYLOAD + 1))
        send(ns, "127.0.0.1", server.port, b"")
        send(ns, "127.0.0.1", server.port, b"y" * MAX_PAYLOAD)
        got = receive(server, 3)
    assert got[:2] == [None, None]
    assert got[2] is not None and got[2].payload == b"y" * MAX_PAYLOAD


def test_capture_udp_server_fixed_port(ns: Namespace) -> None:
    with server_in(ns, port=62201) as server:
        assert server.port == 62201
        send(ns, "127.0.0.1", 62201, b"spa")
        got = receive(server, 1)
    assert got[0] is not None and got[0].dst_port == 62201


def test_capture_udp_server_port_in_use(ns: Namespace) -> None:
    with server_in(ns, port=62201), pytest.raises(CaptureError) as excinfo:
        server_in(ns, port=62201)
    assert excinfo.value.errno == errno.EADDRINUSE
    assert "0.0.0.0:62201" in str(excinfo.value)


def test_capture_udp_server_address_not_local(ns: Namespace) -> None:
    with pytest.raises(CaptureError) as excinfo:
        server_in(ns, bind_address="10.201.77.1", port=62201)
    assert excinfo.value.errno == errno.EADDRNOTAVAIL
    assert "10.201.77.1:62201" in str(excinfo.value)


@pytest.mark.parametrize(("address", "port"), [("localhost", 1), ("::1", 1), ("0.0.0.0", 65536)])
def test_capture_udp_server_bad_arguments(ns: Namespace, address: str, port: int) -> None:
    """Only IPv4 literals (a host name would need DNS) and ports 0..65535."""
    with pytest.raises(ValueError):
        server_in(ns, bind_address=address, port=port)


def test_capture_udp_server_close_is_idempotent(ns: Namespace) -> None:
    server = server_in(ns)
    server.close()
    server.close()
    assert server.fileno() == -1
