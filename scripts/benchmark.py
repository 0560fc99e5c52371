#!/usr/bin/env python3
# Side-by-side benchmark: fwknopd-uci (this project, Python) against the C
# fwknopd 2.6.10 (Debian's fwknop-server), in the same run, on the same bench.
#
# How: two fresh network namespaces (fwkb-srv 10.202.0.1, fwkb-cli
# 10.202.0.2) on a veth pair, IPv6 off, the fw4-shaped ruleset of
# tests/data/fw4-ruleset.nft loaded in the server namespace (reloaded
# before every daemon start), `nft monitor` running there. Each daemon runs
# in turn with identical fwknopd.conf/access.conf (SOURCE ANY, fresh
# KEY_BASE64/HMAC_KEY_BASE64, FW_ACCESS_TIMEOUT 30, packet aging on) and
# identical options, in sniffing mode and in UDP-server mode (-U).
# Measured, per daemon and mode:
#   1. knock-to-open latency: client sendto() to the grant showing up in
#      `nft monitor` (our `add element` to fwknopd_allow4; the C daemon's
#      iptables-nft `add rule`), one allow IP per knock, random gaps. When
#      the monitor cannot name the element (nft 1.0.6 loses our set from its
#      cache after our `replace rule`), the daemon's own commit line
#      "# new generation N by process PID" after the knock is used instead;
#   2. garbage throughput: N random binary and N base64-looking datagrams
#      offered at a high paced rate; "processed" counts the per-packet -v log
#      lines and is divided by the daemon's CPU time (one core) and by wall
#      time; in -U mode also without -v (processed = sent - socket drops);
#   3. one valid knock sent during a paced garbage flood (5,000 pps);
#   4. idle RSS (VmRSS after some idle seconds, without -v);
#   5. start-up time: exec to the "main event loop" line and to the
#      listening socket appearing in /proc.
# Senders (scripts/bench_send.py) run in the client namespace, one process
# per burst; the bench is scripts/bench_lab.py, the phases
# scripts/bench_phases.py, the table scripts/bench_report.py. Everything is
# bounded: a global alarm, caps on every loop and wait, and a finally that
# stops only the processes this script started and deletes its namespaces.
# Run as root:  .venv/bin/python scripts/benchmark.py [--quick] [--json F]

from __future__ import annotations

import argparse
import base64
import importlib
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The sibling modules, found through the sys.path entry above.
from bench_lab import SERVER_IF, SERVER_IP, SERVER_NS, Lab, LabError
from bench_phases import C_DAEMON, OUR_PYTHON, BenchTimeout, Runner
from bench_report import render_report

ROOT = Path(__file__).resolve().parent.parent
RULESET = ROOT / "tests" / "data" / "fw4-ruleset.nft"
C_CLIENT = "/usr/bin/fwknop"


# -- set-up -------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Side-by-side benchmark of fwknopd-uci and the C fwknopd 2.6.10 "
                    "(needs root: it creates the namespaces fwkb-srv and fwkb-cli).")
    ap.add_argument("--quick", action="store_true", help="short smoke-test run")
    ap.add_argument("--json", metavar="FILE", help="write the raw numbers to FILE")
    ap.add_argument("--daemons", default="c,ours", help="comma list of c,ours (default both)")
    ap.add_argument("--modes", default="sniff,udp", help="comma list of sniff,udp")
    ap.add_argument("--encoder", choices=("auto", "ours", "client"), default="auto",
                    help="what builds the valid knocks (auto: ours if importable)")
    ap.add_argument("--knocks", type=int, help="latency knocks per run (default 20, quick 6)")
    ap.add_argument("--blast", type=int,
                    help="garbage datagrams per kind (default 100000, quick 20000)")
    ap.add_argument("--blast-rate", type=float, default=100_000.0,
                    help="offered garbage rate in packets/s (0: flat out)")
    ap.add_argument("--flood-rate", type=float, default=5000.0, help="flood packets/s")
    ap.add_argument("--flood-kind", choices=("base64", "binary"), default="base64")
    ap.add_argument("--budget", type=int, help="global alarm in s (default 600, quick 240)")
    ap.add_argument("--keep-logs", metavar="DIR", help="copy daemon and monitor logs to DIR")
    args = ap.parse_args(argv)
    args.knocks = max(1, min(args.knocks or (6 if args.quick else 20), 200))
    args.blast = max(100, min(args.blast or (20_000 if args.quick else 100_000), 200_000))
    args.blast_rate = max(0.0, min(args.blast_rate, 500_000.0))
    args.flood_rate = max(100.0, min(args.flood_rate, 50_000.0))
    args.flood_seconds = 3.0 if args.quick else 5.0
    args.knock_at = 1.0 if args.quick else 2.0
    args.idle_seconds = 5.0 if args.quick else 10.0
    args.starts = 2 if args.quick else 5
    args.budget = max(60, min(args.budget or (240 if args.quick else 600), 3600))
    args.daemons = [d for d in args.daemons.split(",") if d in ("c", "ours")]
    args.modes = [m for m in args.modes.split(",") if m in ("sniff", "udp")]
    return args


def machine_info() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break

    def version(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unavailable ({exc})"
        return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or
                                                                      out.stderr) else "?"

    try:
        crypto = importlib.metadata.version("cryptography")
    except importlib.metadata.PackageNotFoundError:
        crypto = "not installed"
    return {
        "nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu": model, "kernel": platform.release(), "machine": platform.machine(),
        "python": platform.python_version(), "python_exe": sys.executable,
        "cryptography": crypto, "fwknopd": version([C_DAEMON, "-V"]),
        "nft": version(["nft", "--version"]),
    }


def write_configs(workdir: Path) -> tuple[Path, Path, bytes, bytes]:
    """Fresh keys and the two config files both daemons read."""
    key, hmac_key = os.urandom(32), os.urandom(64)
    conf = workdir / "fwknopd.conf"
    access = workdir / "access.conf"
    conf.write_text("# written by scripts/benchmark.py, read by both daemons\n"
                    f"PCAP_INTF {SERVER_IF}\n"
                    "ENABLE_SPA_PACKET_AGING Y\n"
                    "MAX_SPA_PACKET_AGE 120\n")
    access.write_text("# written by scripts/benchmark.py, read by both daemons\n"
                      "SOURCE ANY\n"
                      f"KEY_BASE64 {base64.b64encode(key).decode()}\n"
                      f"HMAC_KEY_BASE64 {base64.b64encode(hmac_key).decode()}\n"
                      "FW_ACCESS_TIMEOUT 30\n")
    conf.chmod(0o600)
    access.chmod(0o600)
    return conf, access, key, hmac_key


class Encoder:
    """Builds valid knocks: our build_packet, or the real client (-T -B)."""

    def __init__(self, choice: str, key: bytes, hmac_key: bytes, workdir: Path) -> None:
        self.key, self.hmac_key, self.workdir = key, hmac_key, workdir
        self._ours: Callable[[str], str] | None = None
        self.problem = ""
        if choice in ("auto", "ours"):
            self._ours = self._load_ours()
            if self._ours is None and choice == "ours":
                raise LabError(f"our encoder is not importable: {self.problem}")
        self.name = "fwknopd_uci.spa.build_packet" if self._ours else "fwknop client -T -B"

    def _load_ours(self) -> Callable[[str], str] | None:
        try:
            # The package is being written while this runs: look the names
            # up at run time, in the package first, then in its modules.
            spa = importlib.import_module("fwknopd_uci.spa")
            build: Any = getattr(spa, "build_packet", None)
            keys_type: Any = getattr(spa, "StanzaKeys", None)
            if build is None or keys_type is None:
                build = importlib.import_module("fwknopd_uci.spa.encode").build_packet
                keys_type = importlib.import_module("fwknopd_uci.spa.crypto").StanzaKeys
            keys = keys_type(self.key, self.hmac_key)
        except Exception as exc:  # noqa: BLE001 - any failure means "use the client"
            self.problem = f"{type(exc).__name__}: {exc}"
            return None

        def make(message: str) -> str:
            return str(build(message, keys, timestamp=int(time.time())))
        return make

    def make(self, ips: list[str]) -> list[str]:
        if self._ours is not None:
            return [self._ours(f"{ip},tcp/22") for ip in ips]
        home = self.workdir / "client-home"
        home.mkdir(exist_ok=True)
        out = home / "packet"
        packets = []
        for ip in ips:
            argv = [C_CLIENT, "--no-rc-file", "--no-save-args", "-A", "tcp/22", "-a", ip,
                    "-D", SERVER_IP, "--key-base64-rijndael",
                    base64.b64encode(self.key).decode(), "--key-base64-hmac",
                    base64.b64encode(self.hmac_key).decode(), "-T", "-B", str(out)]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                                  env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, check=False)
            if proc.returncode != 0 or not out.exists():
                raise LabError(f"fwknop client failed: {proc.stderr.strip()[:300]}")
            packets.append(out.read_text().strip())
            out.unlink()
        return packets


def probe_ours() -> str | None:
    """None if our daemon's CLI answers -h in the server namespace, else why not."""
    try:
        proc = subprocess.run(["ip", "netns", "exec", SERVER_NS, str(OUR_PYTHON), "-m",
                               "fwknopd_uci.server.cli", "-h"], capture_output=True,
                              text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "-h did not return within 30 s"
    if proc.returncode != 0:
        return f"-h exited {proc.returncode}: " + (proc.stderr or proc.stdout).strip()[-600:]
    return None


def netns_exec_overhead() -> float:
    """Median ms of `ip netns exec fwkb-srv true`: included in every start-up time."""
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        subprocess.run(["ip", "netns", "exec", SERVER_NS, "true"], timeout=10, check=False)
        times.append((time.monotonic() - t0) * 1000)
    return statistics.median(times)


def measure(lab: Lab, args: argparse.Namespace, workdir: Path,
            results: dict[str, Any]) -> None:
    conf, access, key, hmac_key = write_configs(workdir)
    encoder = Encoder(args.encoder, key, hmac_key, workdir)
    results["encoder"] = encoder.name
    if encoder.problem:
        results["encoder_note"] = f"ours not importable ({encoder.problem})"
    results["netns_exec_ms"] = netns_exec_overhead()
    daemons = list(args.daemons)
    if "ours" in daemons:
        problem = probe_ours()
        if problem is not None:
            results["ours_unavailable"] = problem
            daemons.remove("ours")
    runner = Runner(lab, args, encoder.make, conf, access, workdir)
    for mode in args.modes:
        for which in daemons:
            entry: dict[str, Any] = results["runs"].setdefault(which, {}).setdefault(mode, {})
            print(f"[bench] {which} / {mode}: start-up and idle ...", flush=True)
            try:
                entry["startup"] = runner.startup_and_idle(which, mode)
            except BenchTimeout:
                raise
            except Exception as exc:  # noqa: BLE001 - report it, go on with the next run
                entry["startup"] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"[bench] {which} / {mode}: knocks, garbage, flood ...", flush=True)
            try:
                entry.update(runner.verbose_phases(which, mode))
            except BenchTimeout:
                raise
            except Exception as exc:  # noqa: BLE001 - report it, go on with the next run
                entry["error"] = f"{type(exc).__name__}: {exc}"


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGALRM:
        raise BenchTimeout("the global alarm went off (see --budget)")
    raise BenchTimeout(f"stopped by {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("benchmark: needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    for tool in ("ip", "nft", "stdbuf", C_DAEMON):
        if shutil.which(tool) is None:
            print(f"benchmark: {tool} not found (scripts/setup install)", file=sys.stderr)
            return 2
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_alarm)
    signal.signal(signal.SIGHUP, _on_alarm)
    signal.alarm(args.budget)
    workdir = Path(tempfile.mkdtemp(prefix="fwkb-"))
    results: dict[str, Any] = {"machine": machine_info(), "args": {
        k: v for k, v in vars(args).items() if k != "json"}, "runs": {}}
    results["ruleset"] = str(RULESET) if RULESET.exists() else "built-in minimal fw4"
    lab = Lab(workdir, RULESET if RULESET.exists() else None)
    started = time.monotonic()
    try:
        try:
            lab.setup()
            measure(lab, args, workdir, results)
        except BenchTimeout as exc:
            results["aborted"] = str(exc)
        except LabError as exc:
            results["aborted"] = f"bench error: {exc}"
        except KeyboardInterrupt:
            results["aborted"] = "interrupted"
        finally:
            # Teardown must not be cut short: every command in it has its own
            # timeout, so the alarm is off and SIGTERM/SIGHUP wait until it ends.
            signal.alarm(0)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            results["monitor_tail"] = lab.monitor_tail()[-20:]
            lab.close()
        results["elapsed_s"] = time.monotonic() - started
        print(render_report(results))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
            print(f"raw numbers written to {args.json}")
        if args.keep_logs:
            dest = Path(args.keep_logs)
            dest.mkdir(parents=True, exist_ok=True)
            for log in workdir.rglob("*.log"):
                name = log.parent.name if log.parent != workdir else ""
                shutil.copy(log, dest / (f"{name}-{log.name}" if name else log.name))
            print(f"logs copied to {dest}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
