# The daemon shell: wires a packet source, the pure decision (decide.py),
# the replay cache and the firewall together, and runs the event loop.
#
# Packets are handled as they arrive: the loop blocks in select() on the
# capture socket and drains it, with no sleep-and-batch cycle (the C
# daemon's 100 packets per 100 ms is why it drops knocks under load).
# Signals arrive through signal.set_wakeup_fd, so SIGHUP (reload) and
# SIGTERM/SIGINT (exit) are handled between packets, never inside one.
# Grants live in the kernel with their own timeout, so there is no timer
# to run and nothing to clean up at exit.

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..capture import PacketSource
from ..config import AccessStanza, ServerConfig
from ..firewall import Firewall, FirewallError
from ..model import CapturedPacket
from .decide import Settings, Verdict, evaluate
from .grantbook import GrantBook
from .ratelimit import LogBudget
from .replay import ReplayCache, ReplayCacheFull

__all__ = ["MAX_DRAIN", "REOPEN_SECONDS", "Daemon", "PacketSource", "Runtime",
           "settings_from_config"]

# Packets handled per wake-up before signals are looked at again: small
# enough that SIGTERM is served within milliseconds during a flood.
MAX_DRAIN = 256
# While the capture interface is gone (EXIT_AT_INTF_DOWN N), try to open it
# again this often, in seconds.
REOPEN_SECONDS = 2.0


@dataclass(frozen=True)
class Runtime:
    """Everything loaded from the configuration files."""

    config: ServerConfig
    stanzas: tuple[AccessStanza, ...]
    settings: Settings


def settings_from_config(config: ServerConfig, *, test_mode: bool) -> Settings:
    return Settings(
        packet_aging=config.enable_spa_packet_aging,
        max_packet_age=config.max_spa_packet_age,
        digest_persistence=config.enable_digest_persistence,
        spa_over_http=config.enable_spa_over_http,
        allow_any_user_agent=config.allow_any_user_agent,
        x_forwarded_for=config.enable_x_forwarded_for,
        test_mode=test_mode,
    )


class Daemon:
    """Acts on verdicts; owns the event loop.

    Args:
        runtime: the loaded configuration.
        firewall: where grants go (None in --test mode).
        replay: the replay cache.
        log: the logger decisions are written to.
        clock: returns "now" in epoch seconds (injectable for tests).
        reload: returns a freshly loaded Runtime and its warnings on SIGHUP,
            or raises.
        firewall_label: how log lines name where grants go.
        hexdump: log a hex dump of every candidate payload (-vvv -f).
    """

    def __init__(self, runtime: Runtime, firewall: Firewall | None, replay: ReplayCache,
                 log: logging.Logger, *, clock: Callable[[], float] = time.time,
                 reload: Callable[[], tuple[Runtime, list[str]]] | None = None,
                 firewall_label: str = "the firewall", hexdump: bool = False) -> None:
        self.runtime = runtime
        self.firewall = firewall
        self.replay = replay
        self.log = log
        self.clock = clock
        self._reload = reload
        self.firewall_label = firewall_label
        self.hexdump = hexdump
        self._stop = False
        self._hup = False
        self._source: PacketSource | None = None
        self.packets = 0
        self.exit_status = 0
        self.grants = GrantBook()
        # None: log every line (-v asks for all of them).
        self.log_budget: LogBudget | None = LogBudget()

    # -- one packet ---------------------------------------------------
    def handle(self, pkt: CapturedPacket) -> Verdict:
        """Decide on one packet and carry the decision out."""
        now = self.clock()
        if self.hexdump:
            self.log.debug("[%s] payload (%d bytes):\n%s", pkt.src_ip, len(pkt.payload),
                           _hexdump(pkt.payload))
        verdict = evaluate(pkt, self.runtime.stanzas, self.runtime.settings, self.replay, now)
        self._emit(verdict, now)
        tag = f"[{pkt.src_ip}] (stanza #{verdict.stanza})"
        if verdict.record is not None:
            try:
                self.replay.add(verdict.record)
            except ReplayCacheFull as exc:
                self.log.warning("%s Could not add digest to replay cache: %s", tag, exc)
                return Verdict(verdict.events)
            except OSError as exc:
                # Remembered in memory, but a restart would forget it: grant
                # nothing that a replay after a restart could open again.
                self.log.error("%s Could not add digest to replay cache (%s: %s); refusing "
                               "the SPA packet", tag, self.replay.path, exc)
                return Verdict(verdict.events)
        if not verdict.grants:
            return verdict
        if self.firewall is None:
            self.log.warning("%s --test mode enabled, skipping firewall manipulation.", tag)
            return verdict
        done, expires = [], 0
        for wanted in verdict.grants:
            grant = self.grants.plan(wanted, now)
            if grant is None:
                self.log.error("%s Refusing %s/%d for %s: %d grants are open, the most this "
                               "daemon keeps", tag, wanted.proto, wanted.port, wanted.source,
                               self.grants.max_active)
                continue
            try:
                self.firewall.grant(grant)
            except FirewallError as exc:
                self.log.error("%s Could not add access rule for %s -> %s/%d: %s", tag,
                               grant.source, grant.proto, grant.port, exc)
                continue
            self.grants.record(grant, now)
            done.append(f"{grant.proto}/{grant.port}")
            expires = max(expires, int(now) + grant.timeout)
        if done:
            self.log.info("%s Added access rule to %s for %s -> %s, expires at %d", tag,
                          self.firewall_label, verdict.grants[0].source, ",".join(done),
                          expires)
        return verdict

    def _emit(self, verdict: Verdict, now: float) -> None:
        """Log the decision's lines; refusals are held to the log budget."""
        for event in verdict.events:
            if verdict.granted or event.level >= logging.ERROR or self.log_budget is None:
                self.log.log(event.level, "%s", event.text)
                continue
            allowed, dropped = self.log_budget.allow(now)
            if dropped:
                self.log.warning("%d log lines about refused packets were suppressed in the "
                                 "last second (a flood?)", dropped)
            if allowed:
                self.log.log(event.level, "%s", event.text)

    # -- the loop -----------------------------------------------------
    def run(self, source: PacketSource | None,
            open_source: Callable[[Runtime], PacketSource], *, packet_limit: int = 0) -> int:
        """Serve packets until SIGTERM/SIGINT or the packet limit (-C).

        open_source opens a (new) capture: after a reload that changes its
        settings, and while the interface is gone (EXIT_AT_INTF_DOWN N, or
        source None at start), every REOPEN_SECONDS. Returns the exit status.
        """
        selector = selectors.DefaultSelector()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        old_fd = signal.set_wakeup_fd(wake_w)
        old = {sig: signal.signal(sig, self._on_signal)
               for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
        self._source = source
        try:
            selector.register(wake_r, selectors.EVENT_READ, "signal")
            if source is not None:
                selector.register(source.fileno(), selectors.EVENT_READ, "packet")
            self.log.info("Starting fwknopd main event loop.")
            while not self._stop:
                timeout = None if self._source is not None else REOPEN_SECONDS
                for key, _ in selector.select(timeout):
                    if key.data == "signal":
                        with contextlib.suppress(BlockingIOError):
                            os.read(wake_r, 512)
                    elif self._source is not None:
                        self._drain(self._source, packet_limit, selector)
                if self._hup and not self._stop:
                    self._hup = False
                    self._do_reload(open_source, selector)
                if self._source is None and not self._stop:
                    self._reopen(open_source, selector)
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            selector.close()
            if self._source is not None:
                self._source.close()
            os.close(wake_r)
            os.close(wake_w)
        return self.exit_status

    def serve(self, packets: Iterable[CapturedPacket], *, packet_limit: int = 0) -> int:
        """Run the same pipeline over an iterable (--pcap-file)."""
        for pkt in packets:
            self.packets += 1
            self.handle(pkt)
            if packet_limit and self.packets >= packet_limit:
                break
        return 0

    def _drain(self, source: PacketSource, packet_limit: int,
               selector: selectors.BaseSelector) -> None:
        """Handle the queued packets (at most MAX_DRAIN per wake-up)."""
        for _ in range(MAX_DRAIN):
            try:
                pkt = source.recv()
            except BlockingIOError:
                return
            except OSError as exc:
                self._capture_failed(exc, selector)
                return
            if pkt is None:
                continue
            self.packets += 1
            try:
                self.handle(pkt)
            except Exception:
                self.log.exception("[%s] internal error while handling a packet", pkt.src_ip)
            if packet_limit and self.packets >= packet_limit:
                self.log.info("Packet count limit (%d) reached. Exiting.", packet_limit)
                self._stop = True
            if self._stop or self._hup:
                return

    def _capture_failed(self, exc: OSError, selector: selectors.BaseSelector) -> None:
        """The capture broke (interface down or gone): exit, or wait for it."""
        interface = self.runtime.config.pcap_intf
        if self.runtime.config.exit_at_intf_down:
            self.log.error("Capture on %s failed (%s); exiting (EXIT_AT_INTF_DOWN is on, "
                           "procd restarts fwknopd when the interface is back)",
                           interface, exc.strerror or exc)
            self.exit_status = 1
            self._stop = True
            return
        self.log.warning("Capture on %s failed (%s); waiting for the interface to come back",
                         interface, exc.strerror or exc)
        self._drop_source(selector)

    def _drop_source(self, selector: selectors.BaseSelector) -> None:
        if self._source is not None:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(self._source.fileno())
            self._source.close()
            self._source = None

    def _reopen(self, open_source: Callable[[Runtime], PacketSource],
                selector: selectors.BaseSelector) -> None:
        try:
            source = open_source(self.runtime)
        except OSError:
            return  # still gone; try again in REOPEN_SECONDS
        self._source = source
        selector.register(source.fileno(), selectors.EVENT_READ, "packet")
        self.log.info("Capture is running again.")

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            self._hup = True
        else:
            self.log.info("Got %s. Exiting...", signal.Signals(signum).name)
            self._stop = True

    def _do_reload(self, open_source: Callable[[Runtime], PacketSource],
                   selector: selectors.BaseSelector) -> None:
        """SIGHUP: re-read the configuration; keep everything on failure."""
        if self._reload is None:
            return
        self.log.info("Got SIGHUP. Re-reading configs.")
        try:
            runtime, warnings = self._reload()
        except Exception as exc:  # noqa: BLE001 - a bad edit must not kill the daemon
            self.log.error("Reload failed, keeping the running configuration: %s", exc)
            return
        capture_changed = _capture_key(self.runtime.config) != _capture_key(runtime.config)
        if capture_changed:
            try:
                source = open_source(runtime)
            except Exception as exc:  # noqa: BLE001 - keep serving on the old capture
                self.log.error("Reload failed, could not open the new capture (%s); keeping "
                               "the running configuration", exc)
                return
            self._drop_source(selector)
            self._source = source
            selector.register(source.fileno(), selectors.EVENT_READ, "packet")
        for warning in warnings:
            self.log.warning("%s", warning)
        self.runtime = runtime
        # The age window may have changed; replay.py's horizon keeps what was
        # already forgotten refused.
        self.replay.retention = self.replay.retention_for(
            runtime.settings.packet_aging, runtime.settings.max_packet_age)
        self.log.info("Configuration reloaded: %d access stanza(s)%s.", len(runtime.stanzas),
                      ", new capture opened" if capture_changed else "")


def _capture_key(config: ServerConfig) -> tuple[object, ...]:
    return (config.enable_udp_server, config.udpserv_port, config.pcap_intf,
            config.pcap_filter, config.enable_pcap_promisc)


def _hexdump(data: bytes, width: int = 16) -> str:
    """Offset, hex and printable ASCII, as the C daemon's -vvv dump."""
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset:offset + width]
        text = "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in chunk)
        lines.append(f"0x{offset:04x}:  {chunk.hex(' '):<{width * 3}} {text}")
    return "\n".join(lines)
