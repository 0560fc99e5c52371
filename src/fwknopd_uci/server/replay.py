# The replay cache: digests of every SPA packet that authenticated and
# decrypted, kept in memory and persisted in DIGEST_FILE in the C daemon's
# line format (spa-protocol.md 6.2), so a captured knock cannot be replayed,
# also not after a restart.
#
# File format, one line per digest, after a header comment:
#   <digest> <proto> <src_ip> <src_port> <dst_ip> <dst_port> <time>
# where <digest> is b64-nopad(SHA256(wire)) and <time> the epoch second the
# entry counts from (see below). The C daemon never prunes; we do, within a
# bound, and remember how far we pruned in a comment line the C daemon
# ignores:  "# fwknopd-uci horizon <epoch>".
#
# Why forgetting entries cannot let a replay through:
# * An entry's time is max(time received, the packet's own timestamp), the
#   timestamp capped at FUTURE_CAP seconds ahead (the daemon sets it so).
#   With packet aging on, a packet passes the age check only while
#   |now - ts| <= MAX_SPA_PACKET_AGE, so it can pass again only while
#   now <= ts + age <= time + age. Entries are kept 2 * age + CLOCK_SLACK
#   seconds after their time, which covers that window.
# * The window may change later (SIGHUP with a larger MAX_SPA_PACKET_AGE, or
#   aging turned off). So whenever entries are forgotten, the cache keeps a
#   horizon: the newest time of any forgotten entry. A forgotten packet's
#   timestamp is at or before its entry's time, hence at or before the
#   horizon, and the decision refuses every packet stamped at or before the
#   horizon as a possible replay, whatever the age settings are now. The
#   horizon is persisted, so this also holds after a restart.
# * With packet aging off, no entry is ever forgotten.
# * When MAX_ENTRIES live entries are held, nothing is evicted: the cache
#   says it has no room and the daemon refuses new packets (fail closed,
#   "Could not add digest to replay cache") instead of forgetting one.
# * The only packets a forgotten entry does not cover are ones stamped more
#   than FUTURE_CAP seconds ahead of when they were first seen: refused then
#   (too new), such a packet could be accepted once when its time comes.
#   It was never accepted before, so this is a late first use, not a
#   replay; the cap keeps one key holder from filling the cache until 2038.
# Lookups are dict lookups; the digest is not a secret (it is a hash of what
# the sender put on the wire), so a timing difference leaks nothing.

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

__all__ = ["CLOCK_SLACK", "FUTURE_CAP", "MAX_ENTRIES", "ReplayCache", "ReplayCacheFull",
           "ReplayEntry"]

# 10,000 entries cost about 3.3 MB (measured with tracemalloc: ~330 bytes
# each). With aging on (the default 120 s window keeps entries for 840 s)
# filling it takes a sustained 12 valid knocks per second from key holders;
# with aging off it is 10,000 knocks in the life of the file (the daemon
# warns at start when the cache is 90 % full).
MAX_ENTRIES = 10_000
# Margin on top of the 2 * age window for clock steps (NTP on a router that
# booted without a clock), in seconds.
CLOCK_SLACK = 600
# Prune expired entries every this many additions, so memory stays small
# in normal use without an O(n) scan per knock.
PRUNE_EVERY = 256
# How far ahead a packet's own timestamp may push its entry's time: twice the
# largest MAX_SPA_PACKET_AGE fwknopd.conf allows (100000 s).
FUTURE_CAP = 200_000
# A digest file larger than this is refused at start (about 10 x MAX_ENTRIES
# lines): it cannot be ours, and reading it would defeat the memory bound.
MAX_FILE_BYTES = 8 * 1024 * 1024
HEADER = "# <digest> <proto> <src_ip> <src_port> <dst_ip> <dst_port> <time>\n"
HORIZON_PREFIX = "# fwknopd-uci horizon "


class ReplayCacheFull(Exception):
    """Raised by add() when MAX_ENTRIES live entries are held."""


@dataclass(frozen=True, slots=True)
class ReplayEntry:
    digest: str
    proto: int
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    created: int

    def line(self) -> str:
        return (f"{self.digest} {self.proto} {self.src_ip} {self.src_port} "
                f"{self.dst_ip} {self.dst_port} {self.created}\n")

    @classmethod
    def parse(cls, line: str) -> ReplayEntry:
        """Parse one file line; ValueError if it is malformed."""
        parts = line.split()
        if len(parts) != 7 or len(parts[0]) != 43:
            raise ValueError("expected 7 fields and a 43-character digest")
        digest, proto, src, sport, dst, dport, created = parts
        return cls(digest, int(proto), str(IPv4Address(src)), int(sport),
                   str(IPv4Address(dst)), int(dport), int(created))


class ReplayCache:
    """Digests of packets already seen, bounded and persisted.

    Args:
        path: the DIGEST_FILE, or None for a memory-only cache (tests, -t).
        retention: seconds an entry must be kept (2 * MAX_SPA_PACKET_AGE +
            CLOCK_SLACK when packet aging is on), or None to keep forever.
        max_entries: the memory bound.
        read_only: read the file but never write it (--test mode).
    """

    def __init__(self, path: Path | None, *, retention: int | None,
                 max_entries: int = MAX_ENTRIES, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self.retention = retention
        self.max_entries = max_entries
        self._entries: dict[str, ReplayEntry] = {}
        self._adds_since_prune = 0
        self.horizon = 0  # newest time of any forgotten entry (0: none)

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def retention_for(packet_aging: bool, max_age: int) -> int | None:
        return 2 * max_age + CLOCK_SLACK if packet_aging else None

    @staticmethod
    def entry_time(received: float, stamp: int) -> int:
        """The time an entry counts from (see the module header)."""
        now = int(received)
        return max(now, min(stamp, now + FUTURE_CAP))

    def load(self, now: float) -> list[str]:
        """Read the file (if any), drop expired entries, return warnings.

        Malformed lines are skipped with a warning, as the C daemon does.
        When entries were dropped the file is rewritten atomically.

        Raises:
            OSError: the file cannot be read, is not a regular file, or is
                larger than MAX_FILE_BYTES.
        """
        warnings: list[str] = []
        if self.path is None or not self.path.exists():
            return warnings
        info = self.path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{self.path} is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise OSError(f"{self.path} is larger than {MAX_FILE_BYTES} bytes; move it away "
                          "or start once with --rotate-digest-cache")
        total = 0
        with open(self.path, encoding="ascii", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if line.startswith(HORIZON_PREFIX):
                    with contextlib.suppress(ValueError):
                        self.horizon = max(self.horizon,
                                           int(line[len(HORIZON_PREFIX):].strip()))
                    continue
                if not line.strip() or line[0] in "#;\r\n\0":
                    continue
                total += 1
                try:
                    entry = ReplayEntry.parse(line)
                except ValueError as exc:
                    warnings.append(f"{self.path}:{number}: skipping malformed digest "
                                    f"cache line: {exc}")
                    continue
                self._entries[entry.digest] = entry
        self.prune(now)
        if len(self._entries) != total and not self.read_only:
            self._rewrite()
        if len(self._entries) >= self.max_entries * 9 // 10:
            warnings.append(f"{self.path}: the replay cache holds {len(self._entries)} live "
                            f"entries of at most {self.max_entries}; when it is full, new "
                            "knocks are refused")
        return warnings

    def check_writable(self) -> None:
        """Create the file (with its header) if needed; OSError if it cannot be written."""
        if self.path is None or self.read_only:
            return
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="ascii") as handle:
            if new:
                handle.write(HEADER)

    def lookup(self, digest: str) -> ReplayEntry | None:
        return self._entries.get(digest)

    def has_room(self, now: float) -> bool:
        if len(self._entries) < self.max_entries:
            return True
        self.prune(now)
        return len(self._entries) < self.max_entries

    def add(self, entry: ReplayEntry) -> None:
        """Remember entry in memory, then append it to the file.

        Raises:
            ReplayCacheFull: no room (nothing is evicted to make some).
            OSError: the file could not be written (the entry is still
                remembered in memory, so it cannot be replayed to this
                process).
        """
        if entry.digest in self._entries:
            return
        if not self.has_room(entry.created):
            raise ReplayCacheFull(f"the replay cache is full ({len(self._entries)} live "
                                  "entries)")
        self._entries[entry.digest] = entry
        self._adds_since_prune += 1
        if self._adds_since_prune >= PRUNE_EVERY:
            self.prune(entry.created)
        if self.path is not None and not self.read_only:
            self._append(entry)

    def prune(self, now: float) -> int:
        """Drop entries whose packets can no longer pass the age check."""
        self._adds_since_prune = 0
        if self.retention is None:
            return 0
        oldest = now - self.retention
        stale = [e for e in self._entries.values() if e.created < oldest]
        for entry in stale:
            del self._entries[entry.digest]
            self.horizon = max(self.horizon, entry.created)
        return len(stale)

    def entries(self) -> Iterable[ReplayEntry]:
        return self._entries.values()

    def _append(self, entry: ReplayEntry) -> None:
        assert self.path is not None
        new = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="ascii") as handle:
            if new:
                handle.write(HEADER)
            handle.write(entry.line())

    def _rewrite(self) -> None:
        """Replace the file with the live entries: temp file, fsync, rename."""
        # Rare (a load that dropped entries): importing tempfile (with random
        # and friends) at start would cost the idle daemon about 0.4 MB RSS.
        import tempfile

        assert self.path is not None
        directory = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=".digest.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(HEADER)
                if self.horizon:
                    handle.write(f"{HORIZON_PREFIX}{self.horizon}\n")
                handle.writelines(e.line() for e in self._entries.values())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
