# The test bench of scripts/benchmark.py: two network namespaces on a veth
# pair, the firewall of the server namespace, `nft monitor` there, the
# daemon under test with its log read line by line, and the /proc readers.
#
# Every process is started here through `ip netns exec NS argv...`, which
# execs argv in place, so the Popen pid is the daemon's own pid and its
# /proc/PID files (status, stat, task/*/schedstat, net/udp in its
# namespace) can be read from outside. Each process started is recorded,
# and Lab.close() ends exactly those (by pid), then kills by pid whatever
# is still inside the two namespaces (children the daemons forked, such as
# iptables) and deletes the namespaces. Lines read from a pipe are stamped
# with time.monotonic() on arrival, the clock the sender also uses.

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "ALLOW_NET",
    "CLIENT_IP",
    "SERVER_IP",
    "SPA_PORT",
    "Daemon",
    "Lab",
    "LabError",
    "LineWatcher",
    "cpu_seconds",
    "read_status",
    "udp_drops",
    "udp_rx_queue",
]

SERVER_NS, CLIENT_NS = "fwkb-srv", "fwkb-cli"
SERVER_IF, CLIENT_IF = "veth-srv", "veth-cli"  # fw4-ruleset.nft names veth-srv
SERVER_IP, CLIENT_IP = "10.202.0.1", "10.202.0.2"
ALLOW_NET = "10.202.1."  # knocks ask for 10.202.1.x, one address per knock
SPA_PORT = 62201
COMMAND_TIMEOUT = 20.0  # seconds for any one helper command
KEEP_LINES = 400  # tail of each log kept in memory for the report
MAX_COMMITS = 100_000  # nft transactions remembered (a run makes a few hundred)
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Used only when tests/data/fw4-ruleset.nft is missing: the part of an
# OpenWrt fw4 table our daemon needs (table inet fw4 with an input chain).
MINIMAL_FW4 = """\
table inet fw4
flush table inet fw4
table inet fw4 {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state vmap { established : accept, related : accept, invalid : drop }
		iifname "veth-srv" jump input_wan
		reject
	}
	chain input_wan {
		icmp type echo-request accept
		reject
	}
}
"""


class LabError(RuntimeError):
    """The bench itself could not be set up or driven."""


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None,
        timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run argv (never through a shell); raise LabError on failure if check."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, input=input,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout} s: {' '.join(argv)}") from exc
    if check and proc.returncode != 0:
        raise LabError(f"failed ({proc.returncode}): {' '.join(argv)}: {proc.stderr.strip()}")
    return proc


class LineWatcher:
    """Reads a pipe line by line in a thread, stamping each line on arrival.

    Args:
        stream: the binary pipe to read.
        patterns: name -> regex; per name, the count of matching lines and
            the arrival time of the first and last one are kept.
        sink: an open text file that gets every line, or None.
        on_line: called with (stamp, line) for every line (keep it cheap).
    """

    def __init__(self, stream: object, patterns: dict[str, str], *,
                 sink: object | None = None,
                 on_line: Callable[[float, str], None] | None = None) -> None:
        self._stream = stream
        self._patterns = {name: re.compile(rx) for name, rx in patterns.items()}
        self._sink = sink
        self._on_line = on_line
        self._lock = threading.Lock()
        self.counts = {name: 0 for name in patterns}
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.tail: deque[str] = deque(maxlen=KEEP_LINES)
        self.lines = 0
        self.last_line_at = 0.0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for raw in iter(self._stream.readline, b""):  # type: ignore[attr-defined]
            stamp = time.monotonic()
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines += 1
                self.last_line_at = stamp
                self.tail.append(line)
                for name, rx in self._patterns.items():
                    if rx.search(line):
                        self.counts[name] += 1
                        self.first.setdefault(name, stamp)
                        self.last[name] = stamp
            if self._sink is not None:
                self._sink.write(line + "\n")  # type: ignore[attr-defined]
            if self._on_line is not None:
                self._on_line(stamp, line)
        if self._sink is not None:
            self._sink.close()  # type: ignore[attr-defined]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)


def read_status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status (VmRSS, VmHWM, RssAnon, ...)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            out[key] = int(parts[0])
    return out


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own CPU s summed over threads, reaped children's CPU s) of pid.

    Own time comes from task/*/schedstat (nanoseconds); children from the
    cutime+cstime ticks of /proc/PID/stat (only children already reaped).
    """
    own = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            own += int((task / "schedstat").read_text().split()[0])
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    children = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return own / 1e9, children


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def udp_row(pid: int, port: int) -> list[str] | None:
    """The /proc/PID/net/udp row of the socket bound to port, if any."""
    want = f":{port:04X}"
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/net/udp").read_text().splitlines()[1:]:
            cols = line.split()
            if len(cols) > 12 and cols[1].endswith(want):
                return cols
    return None


def udp_drops(pid: int, port: int) -> int | None:
    """Datagrams the kernel dropped on the UDP socket bound to port."""
    row = udp_row(pid, port)
    return None if row is None else int(row[-1])


def udp_rx_queue(pid: int, port: int) -> int | None:
    """Bytes waiting in the receive queue of the UDP socket bound to port."""
    row = udp_row(pid, port)
    return None if row is None else int(row[4].split(":")[1], 16)


def capture_socket_open(pid: int, udp: bool) -> bool:
    """True once pid holds its listening socket (UDP port, or a packet socket)."""
    inodes = _socket_inodes(pid)
    if udp:
        row = udp_row(pid, SPA_PORT)
        return row is not None and row[9] in inodes
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/net/packet").read_text().splitlines()[1:]:
            cols = line.split()
            if cols and cols[-1] in inodes:
                return True
    return False


@dataclass
class Daemon:
    """One running daemon under test."""

    name: str
    proc: subprocess.Popen[bytes]
    started: float  # monotonic time just before Popen
    log: LineWatcher
    udp: bool
    ready_at: float | None = None
    socket_at: float | None = None
    added: dict[str, float] = field(default_factory=dict)  # allow IP -> "Added" log line
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None


class Lab:
    """The two namespaces and everything started in them; close() undoes it all."""

    def __init__(self, workdir: Path, ruleset: Path | None) -> None:
        self.workdir = workdir
        self.ruleset = ruleset
        self._procs: list[subprocess.Popen[bytes]] = []
        self._made: list[str] = []
        # allow IP -> every time an `add rule`/`add element` line named it
        self.grants: dict[str, list[float]] = {}
        # (time, pid) of every "# new generation N by process PID" line: the
        # commit of one nft transaction, whoever made it (capped list).
        self.commits: list[tuple[float, int]] = []
        self._grant_rx = re.compile(r"^add (?:rule|element) ")
        self._ip_rx = re.compile(re.escape(ALLOW_NET) + r"\d{1,3}\b")
        self._commit_rx = re.compile(r"^# new generation \d+ by process (\d+)")
        self._added_rx = re.compile(r"Added access rule .*? for (" + re.escape(ALLOW_NET) +
                                    r"\d{1,3})\b")
        self._monitor: LineWatcher | None = None

    # -- namespaces -------------------------------------------------------
    def setup(self) -> None:
        existing = run(["ip", "netns", "list"]).stdout.split()
        clash = [ns for ns in (SERVER_NS, CLIENT_NS) if ns in existing]
        if clash:
            raise LabError(f"namespace(s) {', '.join(clash)} already exist; another run? "
                           f"If not, remove them with 'ip netns del NAME'")
        for ns in (SERVER_NS, CLIENT_NS):
            run(["ip", "netns", "add", ns])
            self._made.append(ns)
            self.ns(ns, "ip", "link", "set", "lo", "up")
            for knob in ("all", "default", "lo"):
                self.ns(ns, "sysctl", "-qw", f"net.ipv6.conf.{knob}.disable_ipv6=1",
                        check=False)
        self.ns(SERVER_NS, "ip", "link", "add", SERVER_IF, "type", "veth", "peer", "name",
                CLIENT_IF, "netns", CLIENT_NS)
        self.ns(SERVER_NS, "ip", "addr", "add", f"{SERVER_IP}/24", "dev", SERVER_IF)
        self.ns(CLIENT_NS, "ip", "addr", "add", f"{CLIENT_IP}/24", "dev", CLIENT_IF)
        self.ns(SERVER_NS, "ip", "link", "set", SERVER_IF, "up")
        self.ns(CLIENT_NS, "ip", "link", "set", CLIENT_IF, "up")
        self.reset_firewall()
        self._start_monitor()

    def ns(self, ns: str, *argv: str, check: bool = True, input: str | None = None,
           timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", ns, *argv], check=check, input=input,
                   timeout=timeout)

    def reset_firewall(self) -> None:
        """Empty the server namespace's ruleset and load the fw4-shaped one.

        The SPA port is accepted on the wan side for both daemons alike, as
        an OpenWrt owner would (fw4 rejects it by default, which would stop
        every datagram before a -U mode socket saw it).
        """
        self.ns(SERVER_NS, "nft", "flush", "ruleset")
        if self.ruleset is not None:
            self.ns(SERVER_NS, "nft", "-f", str(self.ruleset))
        else:
            self.ns(SERVER_NS, "nft", "-f", "-", input=MINIMAL_FW4)
        self.ns(SERVER_NS, "nft", "insert", "rule", "inet", "fw4", "input_wan", "udp",
                "dport", str(SPA_PORT), "counter", "accept")

    def popen(self, ns: str, argv: Sequence[str], *, stdin: int | None = None,
              stdout: int | None = subprocess.PIPE,
              stderr: int | None = subprocess.STDOUT) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdin=stdin,
                                stdout=stdout, stderr=stderr)
        self._procs.append(proc)
        return proc

    # -- nft monitor ------------------------------------------------------
    def _start_monitor(self) -> None:
        proc = self.popen(SERVER_NS, ["stdbuf", "-oL", "nft", "monitor"])
        sink = (self.workdir / "nft-monitor.log").open("w")
        self._monitor = LineWatcher(proc.stdout, {"probe": r"fwkb_probe"}, sink=sink,
                                    on_line=self._on_monitor_line)
        # The monitor prints nothing when it is ready: make a change and wait
        # until it shows up, so no grant can happen before it listens.
        deadline = time.monotonic() + 10.0
        while self._monitor.snapshot()["probe"] == 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise LabError("nft monitor did not report a probe change within 10 s")
            self.ns(SERVER_NS, "nft", "add", "table", "inet", "fwkb_probe")
            self.ns(SERVER_NS, "nft", "delete", "table", "inet", "fwkb_probe")
            time.sleep(0.1)

    def _on_monitor_line(self, stamp: float, line: str) -> None:
        if self._grant_rx.match(line):
            for ip in self._ip_rx.findall(line):
                self.grants.setdefault(ip, []).append(stamp)
            return
        commit = self._commit_rx.match(line)
        if commit and len(self.commits) < MAX_COMMITS:
            self.commits.append((stamp, int(commit.group(1))))

    def grant_after(self, ip: str, start: float) -> float | None:
        """The first time since start that nft monitor showed a grant for ip."""
        return next((t for t in self.grants.get(ip, ()) if t >= start), None)

    def commit_between(self, pid: int, start: float, end: float) -> float | None:
        """The first commit by pid in [start, end], as nft monitor saw it."""
        for stamp, who in self.commits:
            if who == pid and start <= stamp <= end:
                return stamp
        return None

    def granted_in_kernel(self, ips: list[str]) -> int:
        """How many of ips the server namespace's ruleset names right now."""
        text = self.ns(SERVER_NS, "nft", "list", "ruleset").stdout
        found = set(self._ip_rx.findall(text))
        return sum(1 for ip in ips if ip in found)

    def monitor_tail(self) -> list[str]:
        return [] if self._monitor is None else list(self._monitor.tail)

    # -- daemons ----------------------------------------------------------
    def start_daemon(self, name: str, argv: Sequence[str], *, udp: bool,
                     patterns: dict[str, str], log_path: Path) -> Daemon:
        sink = log_path.open("w")
        added: dict[str, float] = {}

        def on_line(stamp: float, line: str) -> None:
            found = self._added_rx.search(line)
            if found:
                added.setdefault(found.group(1), stamp)

        started = time.monotonic()
        proc = self.popen(SERVER_NS, argv)
        watcher = LineWatcher(proc.stdout, patterns, sink=sink, on_line=on_line)
        return Daemon(name, proc, started, watcher, udp, added=added)

    def wait_ready(self, daemon: Daemon, timeout: float) -> None:
        """Poll (every ms) for the ready line and the listening socket.

        The ready line is the daemon's "ready" pattern; its time is when the
        line arrived on the pipe.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if daemon.socket_at is None and capture_socket_open(daemon.pid, daemon.udp):
                daemon.socket_at = time.monotonic()
            if daemon.ready_at is None:
                daemon.ready_at = daemon.log.first.get("ready")
            if daemon.ready_at is not None and daemon.socket_at is not None:
                return
            if daemon.socket_at is not None and time.monotonic() > daemon.socket_at + 2.0:
                return  # listening but no ready line (e.g. not logged without -v)
            if not daemon.alive():
                raise LabError(f"{daemon.name} exited with {daemon.proc.returncode} during "
                               f"start-up; last lines: {list(daemon.log.tail)[-8:]}")
            time.sleep(0.001)
        if daemon.ready_at is None and daemon.socket_at is None:
            raise LabError(f"{daemon.name} not ready within {timeout} s; last lines: "
                           f"{list(daemon.log.tail)[-8:]}")

    def stop_daemon(self, daemon: Daemon, timeout: float = 8.0) -> int | None:
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if daemon.alive():
            daemon.proc.send_signal(signal.SIGTERM)
            try:
                daemon.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                daemon.proc.kill()
                daemon.proc.wait(5.0)
        daemon.log.join()
        return daemon.proc.returncode

    # -- teardown ---------------------------------------------------------
    def close(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc in reversed(self._procs):
            try:
                proc.wait(3.0)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(3.0)
        if self._monitor is not None:
            self._monitor.join(3.0)  # its log file is closed once the pipe ends
        for ns in reversed(self._made):
            # Anything left inside was started by our processes (iptables
            # children and the like): end those pids, then drop the namespace.
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            run(["ip", "netns", "del", ns], check=False)
        self._made.clear()
