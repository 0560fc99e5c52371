# The measuring phases of scripts/benchmark.py, for one daemon in one mode
# at a time: start-up and idle (several starts without -v, then RSS and, in
# -U mode, a garbage blast counted from socket drops), then one -v run with
# the latency knocks, a binary and a base64 garbage blast, and the flood
# with one knock in it. Every phase returns a dict of raw numbers; every
# wait is capped by one of the constants below.

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_lab import (
    ALLOW_NET,
    CLIENT_NS,
    SERVER_IF,
    SERVER_IP,
    SPA_PORT,
    Daemon,
    Lab,
    LabError,
    cpu_seconds,
    read_status,
    udp_drops,
    udp_rx_queue,
)

__all__ = ["LOG_PATTERNS", "BenchTimeout", "KnockMaker", "Runner", "daemon_argv"]

ROOT = Path(__file__).resolve().parent.parent
SENDER = Path(__file__).resolve().parent / "bench_send.py"
OUR_PYTHON = ROOT / ".venv" / "bin" / "python"
C_DAEMON = "/usr/sbin/fwknopd"

# Builds one valid knock (wire string) per allow IP given.
KnockMaker = Callable[[list[str]], list[str]]

# Per-packet lines both daemons print at -v (counted by LineWatcher).
# Base64 garbage: the C daemon prints one HMAC_COMPAREFAIL line; ours prints
# "Non-corresponding HMAC" (and maybe a debug line with the code): the count
# used is the larger of the two, so each packet counts once either way.
LOG_PATTERNS = {
    # The C daemon in -U mode never prints the main-loop line; its UDP
    # server logs "Kicking off ..." (just before bind) instead. The first
    # of the two is the ready line; the socket check is the exact one.
    "ready": r"Starting fwknopd main event loop|Kicking off UDP server",
    "binary": r"preprocess_spa_data\(\) returned error",
    "hmacfail": r"HMAC_COMPAREFAIL",
    "noncorr": r"Non-corresponding HMAC",
    "added": r"Added access rule",
    "replay": r"Replay detected",
}
GARBAGE_SIZE = {"binary": 300, "base64": 200}
QUIET_SECONDS = 1.0  # a blast is over when no packet was processed for this long
BLAST_WAIT_CAP = 60.0  # and at most this long after the sender finished
GRANT_WAIT = 5.0  # how long after the last knock a grant may still show up
FLOOD_GRANT_WAIT = 10.0  # ... and after the end of a flood


class BenchTimeout(Exception):
    """The global alarm went off, or SIGTERM/SIGHUP arrived: stop measuring."""


def daemon_argv(which: str, *, verbose: bool, udp: bool, conf: Path, access: Path,
                run_dir: Path) -> list[str]:
    exe = [C_DAEMON] if which == "c" else [str(OUR_PYTHON), "-m", "fwknopd_uci.server.cli"]
    argv = [*exe, "-f"]
    if verbose:
        argv.append("-v")
    if udp:
        argv.append("-U")
    return [*argv, "-i", SERVER_IF, "-c", str(conf), "-a", str(access),
            "-d", str(run_dir / "digest.cache"), "-p", str(run_dir / "fwknopd.pid")]


class Runner:
    """Runs every phase for one (daemon, mode) pair and collects numbers."""

    def __init__(self, lab: Lab, args: argparse.Namespace, make_knocks: KnockMaker,
                 conf: Path, access: Path, workdir: Path) -> None:
        self.lab, self.args, self.make_knocks = lab, args, make_knocks
        self.conf, self.access, self.workdir = conf, access, workdir
        self.runs = 0
        self.ip_next = 10

    def _start(self, which: str, mode: str, *, verbose: bool, tag: str) -> Daemon:
        self.runs += 1
        run_dir = self.workdir / f"run{self.runs:02d}-{which}-{mode}-{tag}"
        run_dir.mkdir()
        self.lab.reset_firewall()
        argv = daemon_argv(which, verbose=verbose, udp=mode == "udp", conf=self.conf,
                           access=self.access, run_dir=run_dir)
        daemon = self.lab.start_daemon(which, argv, udp=mode == "udp", patterns=LOG_PATTERNS,
                                       log_path=run_dir / "daemon.log")
        try:
            self.lab.wait_ready(daemon, timeout=30.0)
        except LabError:
            self.lab.stop_daemon(daemon)
            raise
        return daemon

    def _stop(self, daemon: Daemon) -> None:
        status = self.lab.stop_daemon(daemon)
        daemon.extra["exit"] = status

    def _send(self, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        job = {"host": SERVER_IP, "port": SPA_PORT, **job}
        proc = self.lab.popen(CLIENT_NS, [sys.executable, str(SENDER)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(json.dumps(job).encode(), timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.wait(5.0)
            raise LabError(f"sender {job['job']} did not finish within {timeout} s") from exc
        if proc.returncode != 0:
            raise LabError(f"sender {job['job']} failed: {err.decode()[-400:]}")
        result: dict[str, Any] = json.loads(out)
        return result

    def _ips(self, count: int) -> list[str]:
        """Allow IPs not used yet since the last firewall reset (at most 240)."""
        if self.ip_next + count > 250:
            raise LabError("out of allow IPs in 10.202.1.10-249 for this run")
        ips = [f"{ALLOW_NET}{self.ip_next + i}" for i in range(count)]
        self.ip_next += count
        return ips

    # 5. and 4.: start-up time (several starts), then idle RSS on the last.
    def startup_and_idle(self, which: str, mode: str) -> dict[str, Any]:
        ready, bound, rss = [], [], {}
        idle_cpu = None
        quiet: dict[str, Any] = {}
        for i in range(self.args.starts):
            daemon = self._start(which, mode, verbose=False, tag=f"start{i}")
            try:
                if daemon.ready_at is not None:
                    ready.append((daemon.ready_at - daemon.started) * 1000)
                if daemon.socket_at is not None:
                    bound.append((daemon.socket_at - daemon.started) * 1000)
                if i == self.args.starts - 1:
                    before = cpu_seconds(daemon.pid)
                    time.sleep(self.args.idle_seconds)
                    after = cpu_seconds(daemon.pid)
                    rss = read_status(daemon.pid)
                    idle_cpu = (after[0] - before[0]) + (after[1] - before[1])
                    if mode == "udp":
                        quiet = {kind: self._quiet_blast(daemon, kind)
                                 for kind in ("binary", "base64")}
            finally:
                self._stop(daemon)
        return {"ready_ms": ready, "socket_ms": bound, "status_kb": rss,
                "idle_cpu_s": idle_cpu, "idle_seconds": self.args.idle_seconds,
                "quiet_blast": quiet}

    # 2b. the same garbage without -v (UDP mode only): processed = sent - drops.
    def _quiet_blast(self, daemon: Daemon, kind: str) -> dict[str, Any]:
        before_cpu = cpu_seconds(daemon.pid)
        before_drops = udp_drops(daemon.pid, SPA_PORT)
        res = self._send({"job": "blast", "kind": kind, "size": GARBAGE_SIZE[kind],
                          "count": self.args.blast, "rate": self.args.blast_rate}, timeout=150)
        deadline = time.monotonic() + BLAST_WAIT_CAP
        while time.monotonic() < deadline and udp_rx_queue(daemon.pid, SPA_PORT):
            time.sleep(0.02)
        time.sleep(0.2)  # the last datagram taken off the queue is being handled
        after_cpu = cpu_seconds(daemon.pid)
        after_drops = udp_drops(daemon.pid, SPA_PORT)
        if before_drops is None or after_drops is None:
            raise LabError(f"{daemon.name}: no UDP socket on port {SPA_PORT} in /proc")
        processed = res["sent"] - res["errors"] - (after_drops - before_drops)
        cpu = (after_cpu[0] - before_cpu[0]) + (after_cpu[1] - before_cpu[1])
        return {"kind": kind, "sent": res["sent"], "rate_sent": res["rate"],
                "socket_drops": after_drops - before_drops, "processed": processed,
                "processed_fraction": processed / max(res["sent"], 1), "cpu_s": cpu,
                "per_cpu_second": processed / cpu if cpu > 0 else None}

    def verbose_phases(self, which: str, mode: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        daemon = self._start(which, mode, verbose=True, tag="v")
        self.ip_next = 10  # _start reset the firewall: every allow IP is new again
        try:
            for name, phase in (("latency", self.latency), ("blast_binary", self.blast_binary),
                                ("blast_base64", self.blast_base64), ("flood", self.flood)):
                try:
                    out[name] = phase(daemon)
                except BenchTimeout:
                    raise
                except Exception as exc:  # noqa: BLE001 - one failed phase must not end the run
                    out[name] = {"error": f"{type(exc).__name__}: {exc}"}
                if not daemon.alive():
                    out["died"] = f"exit {daemon.proc.returncode}; last lines: " \
                                  f"{list(daemon.log.tail)[-10:]}"
                    break
            out["log_counts"] = daemon.log.snapshot()
            out["rss_after_kb"] = read_status(daemon.pid) if daemon.alive() else {}
        finally:
            self._stop(daemon)
        out["exit"] = daemon.extra.get("exit")
        return out

    # 1. knock-to-open latency.
    def _grant_time(self, daemon: Daemon, ip: str, start: float,
                    end: float) -> tuple[float | None, str]:
        """When nft monitor showed the grant for ip, and from which line.

        "line": the `add rule`/`add element` line naming ip. "commit": the
        daemon's own transaction commit (`# new generation N by process
        PID`) in [start, end], used only when the daemon logged the grant
        for ip but no line named it: nft 1.0.6's monitor loses our set from
        its cache after a `replace rule` and then prints element events as
        "W: Received event for an unknown set." (see the report notes).
        """
        seen = self.lab.grant_after(ip, start)
        if seen is not None:
            return seen, "line"
        if ip in daemon.added:
            commit = self.lab.commit_between(daemon.pid, start, end)
            if commit is not None:
                return commit, "commit"
        return None, "none"

    def _wait_grants(self, daemon: Daemon, ips: list[str], since: float, cap: float) -> None:
        deadline = time.monotonic() + cap
        while time.monotonic() < deadline:
            if all(ip in daemon.added or self.lab.grant_after(ip, since) is not None
                   for ip in ips):
                time.sleep(0.2)  # the monitor's commit line may trail the log line
                return
            time.sleep(0.02)

    def latency(self, daemon: Daemon) -> dict[str, Any]:
        n = self.args.knocks
        ips = self._ips(n)
        packets = self.make_knocks(ips)
        gaps = [random.uniform(0.25, 0.45) for _ in ips]
        sent = self._send({"job": "knocks", "packets": packets, "gaps": gaps},
                          timeout=sum(gaps) + 30)["sent"]
        self._wait_grants(daemon, ips, sent[0] if sent else 0.0, GRANT_WAIT)
        lat, log_lat, seen_by = [], [], {"line": 0, "commit": 0, "none": 0}
        for i, (ip, t_sent) in enumerate(zip(ips, sent, strict=False)):
            t_end = sent[i + 1] if i + 1 < len(sent) else t_sent + GRANT_WAIT
            t_grant, how = self._grant_time(daemon, ip, t_sent, t_end)
            seen_by[how] += 1
            if t_grant is not None:
                lat.append((t_grant - t_sent) * 1000)
            if ip in daemon.added:
                log_lat.append((daemon.added[ip] - t_sent) * 1000)
        return {"ms": lat, "sent": len(sent), "opened": len(lat), "seen_by": seen_by,
                "log_line_ms": log_lat, "in_kernel": self.lab.granted_in_kernel(ips),
                "added_lines": daemon.log.snapshot()["added"]}

    def _processed(self, counts: dict[str, int], kind: str) -> int:
        if kind == "binary":
            return counts["binary"]
        return max(counts["hmacfail"], counts["noncorr"])

    # 2. garbage throughput, one blast per kind.
    def _blast(self, daemon: Daemon, kind: str) -> dict[str, Any]:
        n = self.args.blast
        before_counts = daemon.log.snapshot()
        before_cpu = cpu_seconds(daemon.pid)
        before_drops = udp_drops(daemon.pid, SPA_PORT) if daemon.udp else None
        res = self._send({"job": "blast", "kind": kind, "size": GARBAGE_SIZE[kind], "count": n,
                          "rate": self.args.blast_rate}, timeout=150)
        # Wait until the daemon has worked off its backlog.
        base = self._processed(before_counts, kind)
        done_sending = time.monotonic()
        last_change, last_value = done_sending, -1
        while time.monotonic() - done_sending < BLAST_WAIT_CAP:
            value = self._processed(daemon.log.snapshot(), kind) - base
            if value != last_value:
                last_value, last_change = value, time.monotonic()
            if value >= res["sent"] or time.monotonic() - last_change > QUIET_SECONDS:
                break
            time.sleep(0.05)
        after_cpu = cpu_seconds(daemon.pid)
        after_drops = udp_drops(daemon.pid, SPA_PORT) if daemon.udp else None
        processed = self._processed(daemon.log.snapshot(), kind) - base
        keys = ("binary",) if kind == "binary" else ("hmacfail", "noncorr")
        last_line = max((daemon.log.last.get(k, 0.0) for k in keys), default=0.0)
        cpu_own = after_cpu[0] - before_cpu[0]
        cpu_children = after_cpu[1] - before_cpu[1]
        cpu = cpu_own + cpu_children
        wall = last_line - res["start"] if processed and last_line > res["start"] else None
        drops = None
        if before_drops is not None and after_drops is not None:
            drops = after_drops - before_drops
        return {
            "kind": kind, "size": GARBAGE_SIZE[kind], "sent": res["sent"],
            "send_errors": res["errors"], "send_seconds": res["end"] - res["start"],
            "rate_sent": res["rate"],
            "processed": processed, "processed_fraction": processed / max(res["sent"], 1),
            "cpu_s": cpu, "cpu_own_s": cpu_own, "cpu_children_s": cpu_children,
            "per_cpu_second": processed / cpu if cpu > 0 else None,
            "wall_s": wall, "per_wall_second": processed / wall if wall else None,
            "socket_drops": drops,
        }

    def blast_binary(self, daemon: Daemon) -> dict[str, Any]:
        return self._blast(daemon, "binary")

    def blast_base64(self, daemon: Daemon) -> dict[str, Any]:
        return self._blast(daemon, "base64")

    # 3. one valid knock during a paced flood.
    def flood(self, daemon: Daemon) -> dict[str, Any]:
        ip = self._ips(1)[0]
        packet = self.make_knocks([ip])[0]
        kind = self.args.flood_kind
        before_counts = daemon.log.snapshot()
        before_drops = udp_drops(daemon.pid, SPA_PORT) if daemon.udp else None
        res = self._send({"job": "flood", "kind": kind, "size": GARBAGE_SIZE[kind],
                          "rate": self.args.flood_rate, "duration": self.args.flood_seconds,
                          "knock": packet, "knock_at": self.args.knock_at},
                         timeout=self.args.flood_seconds + 60)
        self._wait_grants(daemon, [ip], res["start"], FLOOD_GRANT_WAIT)
        time.sleep(QUIET_SECONDS)  # let the log catch up before counting
        after_drops = udp_drops(daemon.pid, SPA_PORT) if daemon.udp else None
        processed = self._processed(daemon.log.snapshot(), kind) - \
            self._processed(before_counts, kind)
        knock_sent = res["knock_sent"]
        latency, how = None, "none"
        if knock_sent is not None:
            t_end = knock_sent + self.args.flood_seconds + FLOOD_GRANT_WAIT
            t_grant, how = self._grant_time(daemon, ip, knock_sent, t_end)
            if t_grant is not None:
                latency = (t_grant - knock_sent) * 1000
        return {
            "kind": kind, "rate_asked": self.args.flood_rate, "rate_sent": res["rate"],
            "seconds": self.args.flood_seconds, "knock_at": self.args.knock_at,
            "sent": res["sent"], "worst_sender_lag_s": res["worst_lag"],
            "processed": processed, "processed_fraction": processed / max(res["sent"], 1),
            "socket_drops": None if before_drops is None or after_drops is None
            else after_drops - before_drops,
            "knock_ms": latency, "opened": latency is not None, "seen_by": how,
            "knock_log_line_ms": None if ip not in daemon.added or knock_sent is None
            else (daemon.added[ip] - knock_sent) * 1000,
            "in_kernel": self.lab.granted_in_kernel([ip]),
            "wait_cap_s": FLOOD_GRANT_WAIT,
        }
