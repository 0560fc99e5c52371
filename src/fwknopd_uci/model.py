# Value types shared across the package boundaries (capture -> server ->
# firewall). Frozen dataclasses with no behaviour beyond validation, so
# every layer can be tested with plain values.

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

__all__ = ["IPPROTO_ICMP", "IPPROTO_TCP", "IPPROTO_UDP", "CapturedPacket", "Grant"]

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17


@dataclass(frozen=True, slots=True)
class CapturedPacket:
    """One candidate SPA payload as it came off the wire.

    ``payload`` is the transport payload (UDP data, TCP segment data, or
    the ICMP body after the 8-byte header), already cut at the IP total
    length. ``dst_ip`` is the real destination address, also in UDP-server
    mode (the C daemon records 0.0.0.0 there, fwknop issue 289).
    """

    src_ip: IPv4Address
    dst_ip: IPv4Address
    proto: int
    src_port: int
    dst_port: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Grant:
    """Open ``proto``/``port`` for ``source`` during ``timeout`` seconds."""

    source: IPv4Address
    proto: str  # "tcp" or "udp"
    port: int
    timeout: int

    def __post_init__(self) -> None:
        if self.proto not in ("tcp", "udp"):
            raise ValueError(f"unsupported protocol {self.proto!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {self.port}")
        if not 1 <= self.timeout <= 8388608:
            raise ValueError(f"timeout out of range: {self.timeout}")
