# A tiny network probe run inside a test namespace
# (ip netns exec NS python tests/probe.py ...), so the tests need no nc/socat:
#   probe.py connect HOST PORT [SOURCE_IP]   exit 0 if a TCP connect succeeds
#   probe.py listen PORT [PORT...]           accept and close TCP connections
#   probe.py send HOST PORT FILE             send FILE's bytes as one datagram
#   probe.py garbage HOST PORT COUNT         send COUNT random datagrams
# Every operation is bounded in time and count.

from __future__ import annotations

import os
import selectors
import socket
import sys
import time

CONNECT_TIMEOUT = 1.0
LISTEN_SECONDS = 300  # a listener never outlives a test run


def connect(host: str, port: int, source: str | None) -> int:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT,
                                      source_address=(source, 0) if source else None):
            return 0
    except OSError:
        return 1


def listen(ports: list[int]) -> int:
    selector = selectors.DefaultSelector()
    for port in ports:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(64)
        selector.register(server, selectors.EVENT_READ)
    print("listening", flush=True)
    deadline = time.monotonic() + LISTEN_SECONDS
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
            conn.close()
    return 0


def send(host: str, port: int, data: bytes) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(data, (host, port))
    return 0


def garbage(host: str, port: int, count: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(min(count, 1_000_000)):
            sock.sendto(os.urandom(200 + i % 100), (host, port))
    return 0


def main(argv: list[str]) -> int:
    op, *rest = argv
    if op == "connect":
        return connect(rest[0], int(rest[1]), rest[2] if len(rest) > 2 else None)
    if op == "listen":
        return listen([int(p) for p in rest])
    if op == "send":
        with open(rest[2], "rb") as handle:
            return send(rest[0], int(rest[1]), handle.read().strip())
    if op == "garbage":
        return garbage(rest[0], int(rest[1]), int(rest[2]))
    raise SystemExit(f"unknown probe operation {op!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
