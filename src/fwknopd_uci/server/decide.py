# The access decision: one captured packet, the access stanzas, the
# settings, a read-only view of the replay cache and "now" in; a Verdict out
# (log events, the grants to make, the digest to record). Pure: no sockets,
# no firewall, no clock, no logging; the daemon shell acts on the Verdict.
#
# The order of checks is the C server's (spa-protocol.md 6.3), step numbers
# are cited below. Log texts use the reference's wording, so existing log
# watchers keep matching; every decision line names the source IP and the
# stanza. Deliberate differences, each marked at its line:
# * the "received with access source match" line is DEBUG, not INFO, so the
#   router owner reads one line per decision;
# * the HMAC-failure INFO line names the source IP (fwknop issue 374);
# * NAT (types 2, 4, 5, 6), command messages (type 0) and CMD_CYCLE stanzas
#   are refused: this project does not implement them yet;
# * an allow-IP with leading zeros (which inet_aton reads as octal) is
#   refused as an invalid source IP instead of being reinterpreted.

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Protocol

from ..config import AccessStanza
from ..model import CapturedPacket, Grant
from ..spa import (
    SpaMessage,
    SpaRefused,
    is_gpg_length,
    open_packet,
    prescreen,
    replay_digest,
    unwrap_http,
)
from .replay import ReplayCache, ReplayEntry

__all__ = ["MAX_RAW_PAYLOAD", "LogEvent", "ReplayView", "Settings", "Verdict", "evaluate"]

DEBUG, INFO, WARNING, ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR
# MAX_SPA_PACKET_LEN (5.3): nothing longer is even unwrapped.
MAX_RAW_PAYLOAD = 1500
# 6.4: the timeout used when neither the client nor the stanza gives one.
DEFAULT_TIMEOUT = 30
NAT_TYPES = frozenset({2, 4, 5, 6})


@dataclass(frozen=True, slots=True)
class Settings:
    """The fwknopd.conf switches the decision depends on."""

    packet_aging: bool = True
    max_packet_age: int = 120
    digest_persistence: bool = True
    spa_over_http: bool = False
    allow_any_user_agent: bool = False
    x_forwarded_for: bool = False
    test_mode: bool = False


@dataclass(frozen=True, slots=True)
class LogEvent:
    level: int
    text: str


@dataclass(frozen=True)
class Verdict:
    """What to do with one packet.

    ``record`` is the replay-cache entry to add before acting (None: add
    nothing); ``grants`` is empty when the packet is refused.
    """

    events: tuple[LogEvent, ...]
    grants: tuple[Grant, ...] = ()
    stanza: int | None = None
    record: ReplayEntry | None = None
    message: SpaMessage | None = field(default=None, repr=False)

    @property
    def granted(self) -> bool:
        return bool(self.grants)


class ReplayView(Protocol):
    # Packets stamped at or before this epoch second may have been forgotten
    # by the cache and are refused (replay.py explains why).
    horizon: int

    def lookup(self, digest: str) -> ReplayEntry | None: ...

    def has_room(self, now: float) -> bool: ...


def evaluate(pkt: CapturedPacket, stanzas: Sequence[AccessStanza], settings: Settings,
             replay: ReplayView, now: float) -> Verdict:
    """Run the reference's checks on one packet and decide."""
    return _Evaluation(pkt, settings, now, replay.horizon).run(stanzas, replay)


class _Evaluation:
    def __init__(self, pkt: CapturedPacket, settings: Settings, now: float,
                 horizon: int) -> None:
        self.pkt = pkt
        self.horizon = horizon
        self.settings = settings
        self.now = now
        self.src = str(pkt.src_ip)
        self.events: list[LogEvent] = []
        self.stop = False  # set by step 12: no further stanza may be tried

    def log(self, level: int, text: str) -> None:
        self.events.append(LogEvent(level, text))

    def verdict(self, **kwargs: object) -> Verdict:
        return Verdict(tuple(self.events), **kwargs)  # type: ignore[arg-type]

    def run(self, stanzas: Sequence[AccessStanza], replay: ReplayView) -> Verdict:
        pkt, src = self.pkt, self.src
        # Step 0: pre-screening (5.3), with the HTTP unwrap (5.4) in between.
        try:
            payload, xff = pkt.payload, None
            if len(payload) > MAX_RAW_PAYLOAD:
                raise SpaRefused("PRESCREEN_BAD_DATA", "Data is not a valid SPA message format")
            if self.settings.spa_over_http:
                payload, xff = unwrap_http(payload, self.settings.allow_any_user_agent)
                if not self.settings.x_forwarded_for:
                    xff = None  # the header is only honoured with ENABLE_X_FORWARDED_FOR
            wire = prescreen(payload)
        except SpaRefused as exc:
            self.log(DEBUG, f"[{src}] preprocess_spa_data() returned error: '{exc.message}' "
                            "for incoming packet.")
            return self.verdict()
        # Step 1: some stanza's SOURCE must match.
        if not any(st.source.matches(pkt.src_ip) for st in stanzas):
            self.log(WARNING, f"No access data found for source IP: {src}")
            return self.verdict()
        # Step 1b: the replay cache, looked up before any decryption.
        digest = replay_digest(wire)
        if self.settings.digest_persistence:
            seen = replay.lookup(digest)
            if seen is not None:
                self.log(WARNING, _replay_line(pkt, seen))
                return self.verdict()
        record: ReplayEntry | None = None
        for st in stanzas:
            outcome = self.try_stanza(st, wire, xff)
            if outcome is None:
                continue
            message, grants, stop = outcome
            # Step 7: burn the digest once, after decryption and before the
            # access checks, so refused-but-valid packets are burned too.
            if record is None and self.settings.digest_persistence \
                    and not self.settings.test_mode:
                if not replay.has_room(self.now):
                    self.log(WARNING, f"[{src}] (stanza #{st.number}) Could not add digest to "
                                      "replay cache")
                    return self.verdict()
                record = ReplayEntry(digest, pkt.proto, src, pkt.src_port, str(pkt.dst_ip),
                                     pkt.dst_port,
                                     ReplayCache.entry_time(self.now, message.timestamp))
            if grants:
                return self.verdict(grants=grants, stanza=st.number, record=record,
                                    message=message)
            if stop:
                break
        return self.verdict(record=record)

    def try_stanza(self, st: AccessStanza, wire: str, xff: str | None
                   ) -> tuple[SpaMessage, tuple[Grant, ...], bool] | None:
        """Steps 2-20 for one stanza.

        Returns None when the packet did not decrypt for this stanza, else
        (message, grants, stop): grants empty when refused, stop when no
        further stanza may be tried (step 12).
        """
        pkt, src, n = self.pkt, self.src, st.number
        tag = f"[{src}] (stanza #{n})"
        # Step 2: SOURCE and DESTINATION.
        if not st.source.matches(pkt.src_ip) or (
                st.destination is not None and not st.destination.matches(pkt.dst_ip)):
            self.log(DEBUG, f"(stanza #{n}) SPA packet ({src} -> {pkt.dst_ip}) filtered by "
                            "SOURCE and/or DESTINATION criteria")
            return None
        # Step 3 (DEBUG here, see the header).
        self.log(DEBUG, f"(stanza #{n}) SPA Packet from IP: {src} received with access "
                        "source match")
        # Step 4: expired stanza.
        if st.access_expire is not None and st.access_expire < self.now:
            self.log(INFO, f"{tag} Access stanza has expired")
            return None
        # Step 5/6: only Rijndael is supported; >= 400 characters is taken
        # for GPG (2.10) and tried only by ENABLE_CMD_EXEC stanzas (2.11).
        if st.keys is None or (is_gpg_length(wire) and not st.enable_cmd_exec):
            self.log(ERROR, f"{tag} No stanza encryption mode match for encryption type: "
                            f"{2 if is_gpg_length(wire) else 1}.")
            return None
        try:
            message = open_packet(wire, st.keys)
        except SpaRefused as exc:
            if exc.code == "HMAC_COMPAREFAIL":
                self.log(DEBUG, f"{tag} Error creating fko context: {exc.message}")
                self.log(INFO, f"{tag} Non-corresponding HMAC for this stanza")
            else:
                self.log(WARNING, f"{tag} Error creating fko context: {exc.message}")
            return None
        if self.settings.digest_persistence and message.timestamp <= self.horizon:
            # The cache may have forgotten this packet's digest (replay.py).
            self.log(WARNING, f"{tag} Replay suspected: SPA packet stamped {message.timestamp}, "
                              f"not after the replay cache horizon {self.horizon}, ignoring "
                              "SPA packet")
            self.stop = True
            return message, (), True
        return message, self.check_access(st, message, xff, tag), self.stop

    def check_access(self, st: AccessStanza, msg: SpaMessage, xff: str | None,
                     tag: str) -> tuple[Grant, ...]:
        """Steps 10-20 on a decrypted message; grants, or () when refused."""
        self.log(DEBUG, f"{tag} SPA Decode (res=0): user={msg.username!r} "
                        f"timestamp={msg.timestamp} version={msg.version!r} "
                        f"type={msg.msg_type} message={msg.message!r} "
                        f"client_timeout={msg.client_timeout} digest={msg.digest_type}")
        # Step 11: packet age, symmetric window (6.6).
        if self.settings.packet_aging:
            delta = abs(int(self.now) - msg.timestamp)
            if delta > self.settings.max_packet_age:
                self.log(WARNING, f"{tag} SPA data time difference is too great "
                                  f"({delta} seconds).")
                return ()
        # Step 12: the allow-IP; a bad one stops all further stanzas.
        allow = _parse_allow_ip(msg.allow_ip)
        if allow is None:
            self.log(WARNING, f"{tag} Invalid source IP in SPA message, ignoring SPA packet")
            self.stop = True
            return ()
        # Step 13: 0.0.0.0 means "the packet's source" (or X-Forwarded-For).
        if allow == IPv4Address("0.0.0.0"):
            if st.require_source_address:
                self.log(WARNING, f"{tag} Got 0.0.0.0 when valid source IP was required.")
                return ()
            allow = self.pkt.src_ip
            if xff is not None:
                forwarded = _parse_allow_ip(xff.strip())
                if forwarded is None:
                    self.log(WARNING, f"{tag} Error parsing X-Forwarded-For header: value "
                                      f"'{xff}' is not an IP address")
                    return ()
                allow = forwarded
        # Step 14: REQUIRE_USERNAME, exact.
        if st.require_username is not None and msg.username != st.require_username:
            self.log(WARNING, f"{tag} Username in SPA data ({msg.username}) does not match "
                              f"required username: {st.require_username}")
            return ()
        # Step 15: NAT requests (not implemented: the "not enabled" wording).
        if msg.msg_type in NAT_TYPES:
            self.log(WARNING, f"{tag} SPA packet from {self.src} requested NAT access, but is "
                              "not enabled/supported")
            return ()
        # Step 16: CMD_CYCLE stanzas (not implemented).
        if st.cmd_cycle_open is not None:
            self.log(WARNING, f"{tag} CMD_CYCLE_OPEN is not supported by this fwknopd, "
                              "ignoring SPA packet")
            return ()
        # Step 17: command messages (not implemented).
        if msg.msg_type == 0:
            self.log(WARNING, f"{tag} SPA Command messages are not allowed in the current "
                              "configuration.")
            return ()
        # Step 18: RESTRICT_PORTS (any hit denies), OPEN_PORTS (all listed).
        requested = msg.access
        restrict, allowed = st.restrict_ports or (), st.open_ports
        denied = any(r in restrict for r in requested)
        if allowed is not None and not all(r in allowed for r in requested):
            denied = True
        if denied or not requested:
            self.log(WARNING, f"{tag} One or more requested protocol/ports was denied per "
                              "access.conf.")
            return ()
        timeout = _timeout(st, msg)
        # Step 19: --test stops short of the firewall (and, like the
        # reference, goes on with the remaining stanzas).
        if self.settings.test_mode:
            self.log(WARNING, f"{tag} --test mode enabled, skipping firewall manipulation.")
            return ()
        unique = dict.fromkeys(Grant(allow, proto, port, timeout) for proto, port in requested)
        return tuple(unique)


def _timeout(st: AccessStanza, msg: SpaMessage) -> int:
    """6.4: the client's timeout capped by MAX_FW_TIMEOUT, else the stanza's."""
    if msg.client_timeout > 0:
        return min(msg.client_timeout, st.max_fw_timeout)
    if st.fw_access_timeout > 0:
        return st.fw_access_timeout
    return DEFAULT_TIMEOUT


def _parse_allow_ip(text: str) -> IPv4Address | None:
    """Strict dotted quad (1.4, step 12): 6..16 chars, four decimal parts.

    Leading zeros are refused: inet_aton would read them as octal.
    """
    if not 6 <= len(text) <= 16:
        return None
    parts = text.split(".")
    if len(parts) != 4:
        return None
    for part in parts:
        if not part.isascii() or not part.isdigit() or (len(part) > 1 and part[0] == "0"):
            return None
        if int(part) > 255:
            return None
    return IPv4Address(text)


def _replay_line(pkt: CapturedPacket, seen: ReplayEntry) -> str:
    created = time.strftime("%m/%d/%y %H:%M:%S", time.localtime(seen.created))
    return (f"Replay detected from source IP: {pkt.src_ip}, Destination proto/port: "
            f"{pkt.proto}/{pkt.dst_port}, Original source IP: {seen.src_ip}, Original dst "
            f"proto/port: {seen.proto}/{seen.dst_port}, Entry created: {created}")
