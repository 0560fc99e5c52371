# Test helpers for the whole decision chain: write a config pair into a
# temporary folder, load it with the real parsers, and feed packets to the
# real Daemon with a recording fake firewall and a clock the test controls.

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from fwknopd_uci.config import parse_access_conf, parse_server_conf
from fwknopd_uci.firewall import RecordingFirewall
from fwknopd_uci.model import IPPROTO_UDP, CapturedPacket
from fwknopd_uci.server.daemon import Daemon, Runtime, settings_from_config
from fwknopd_uci.server.decide import Verdict
from fwknopd_uci.server.replay import ReplayCache

__all__ = ["Harness", "load_runtime", "udp_packet"]


def udp_packet(payload: bytes | str, src: str = "10.201.0.2", dst: str = "10.201.0.1",
               dport: int = 62201) -> CapturedPacket:
    if isinstance(payload, str):
        payload = payload.encode()
    return CapturedPacket(IPv4Address(src), IPv4Address(dst), IPPROTO_UDP, 40000, dport,
                          payload)


def load_runtime(tmp: Path, access_conf: str, fwknopd_conf: str = "", *,
                 test_mode: bool = False, pcap_file_mode: bool = False) -> Runtime:
    (tmp / "access.conf").write_text(access_conf)
    (tmp / "fwknopd.conf").write_text(fwknopd_conf)
    config, _ = parse_server_conf(tmp / "fwknopd.conf", pcap_file_mode=pcap_file_mode)
    config = config.with_values(ACCESS_FILE=str(tmp / "access.conf"),
                                DIGEST_FILE=str(tmp / "digest.cache"))
    stanzas, _ = parse_access_conf(config.access_file)
    return Runtime(config, tuple(stanzas), settings_from_config(config, test_mode=test_mode))


@dataclass
class Harness:
    """A Daemon over a temp config, a fake firewall and a fixed clock."""

    tmp: Path
    access_conf: str
    fwknopd_conf: str = ""
    now: float = 1_796_392_300.0
    test_mode: bool = False
    pcap_file_mode: bool = False
    records: list[logging.LogRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.runtime = load_runtime(self.tmp, self.access_conf, self.fwknopd_conf,
                                    test_mode=self.test_mode,
                                    pcap_file_mode=self.pcap_file_mode)
        self.firewall = RecordingFirewall()
        self.replay = ReplayCache(self.tmp / "digest.cache", retention=ReplayCache.retention_for(
            self.runtime.settings.packet_aging, self.runtime.settings.max_packet_age))
        self.log = logging.getLogger(f"fwknopd.test.{id(self)}")
        self.log.setLevel(logging.DEBUG)
        self.log.propagate = False
        harness = self

        class _Keep(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                harness.records.append(record)

        self.log.addHandler(_Keep())
        self.daemon = Daemon(self.runtime, None if self.test_mode else self.firewall,
                             self.replay, self.log, clock=lambda: self.now)

    def send(self, pkt: CapturedPacket) -> Verdict:
        return self.daemon.handle(pkt)

    def lines(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]

    def text(self) -> str:
        return "\n".join(self.lines())
