# The replay cache: digests of every SPA packet that authenticated and
# decrypted, kept in memory and persisted in DIGEST_FILE in the C daemon's
# line format (spa-protocol.md 6.2), so a captured knock cannot be replayed,
# also not after a restart.
#
# File format, one line per digest, after a header comment:
#   <digest> <proto> <src_ip> <src_port> <dst_ip> <dst_port> <time>
# where <digest> is b64-nopad(SHA256(wire)) and <time> the epoch second the
# entry was created. The C daemon never prunes; we do, within a bound.
#
# Why the memory bound cannot let a replay through:
# * An entry's time is max(time received, the packet's own timestamp); the
#   daemon sets it so. With packet aging on, a packet passes the age check
#   only while |now - ts| <= MAX_SPA_PACKET_AGE. Since ts <= time, it can
#   pass again only while now <= ts + age <= time + age. Keeping every entry
#   for 2 * age + CLOCK_SLACK seconds after its time therefore covers the
#   whole window in which its packet could be accepted again, also for a
#   packet stamped in the future that was burned while still too new (the
#   digest is recorded before the age check, as in the C daemon).
# * With packet aging off, no entry ever expires.
# * When MAX_ENTRIES live entries are held, nothing is evicted: the cache
#   says it has no room and the daemon refuses new packets (fail closed,
#   "Could not add digest to replay cache") instead of forgetting one.
# Lookups are dict lookups; the digest is not a secret (it is a hash of what
# the sender put on the wire), so a timing difference leaks nothing.

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

__all__ = ["CLOCK_SLACK", "MAX_ENTRIES", "ReplayCache", "ReplayCacheFull", "ReplayEntry"]

# 20,000 entries cost about 4 MB. With aging on (the default, 120 s window)
# this would take a sustained 40 valid knocks per second from key holders to
# fill; with aging off it is 20,000 knocks in the life of the file.
MAX_ENTRIES = 20_000
# Margin on top of the 2 * age window for clock steps (NTP on a router that
# booted without a clock), in seconds.
CLOCK_SLACK = 600
# Prune expired entries every this many additions, so memory stays small
# in normal use without an O(n) scan per knock.
PRUNE_EVERY = 256
HEADER = "# <digest> <proto> <src_ip> <src_port> <dst_ip> <dst_port> <time>\n"


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

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def retention_for(packet_aging: bool, max_age: int) -> int | None:
        return 2 * max_age + CLOCK_SLACK if packet_aging else None

    def load(self, now: float) -> list[str]:
        """Read the file (if any), drop expired entries, return warnings.

        Malformed lines are skipped with a warning, as the C daemon does.
        When entries were dropped the file is rewritten atomically.
        """
        warnings: list[str] = []
        if self.path is None or not self.path.exists():
            return warnings
        total = 0
        with open(self.path, encoding="ascii", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
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
        return warnings

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
            raise ReplayCacheFull(f"replay cache holds {len(self._entries)} live entries")
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
        stale = [d for d, e in self._entries.items() if e.created < oldest]
        for digest in stale:
            del self._entries[digest]
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
                handle.writelines(e.line() for e in self._entries.values())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
