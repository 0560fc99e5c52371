# The sending side of scripts/benchmark.py: one long-lived process per burst,
# run inside the client namespace (`ip netns exec fwkb-cli python bench_send.py`).
#
# It reads one JSON job from stdin, sends UDP datagrams to the server address
# given in the job, and prints one JSON result on stdout. Every time it
# reports is time.monotonic() (CLOCK_MONOTONIC), which network namespaces
# share, so the parent can set a sendto() time against the moment `nft
# monitor` in the server namespace showed the grant.
#
# Jobs:
#   knocks  send the given wire strings one by one after the given gaps;
#           result: the monotonic time just before each sendto().
#   blast   send N garbage datagrams at a given rate, or as fast as one
#           socket allows (rate 0).
#   flood   send garbage at a fixed rate for a fixed time and slip one valid
#           knock in at a given offset.
# Rates are paced by the monotonic clock: each 1 ms tick sends what is due.
# Garbage is "binary" (random bytes) or "base64" (random characters of the
# base64 alphabet, no '='), made before the clock starts. Every loop is
# bounded by a packet count and a deadline; the script uses only the stdlib.

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time
from typing import Any

# Hard caps, whatever the job asks: the parent never needs more.
MAX_PACKETS = 200_000
MAX_SECONDS = 120.0
MAX_KNOCKS = 256
MAX_RATE = 500_000
# Distinct garbage payloads made up front; the burst cycles through them.
# Every payload is refused by both daemons before any state is kept, so
# repeating one is no different from sending a fresh one.
POOL_SIZE = 4096


def garbage_pool(kind: str, size: int, count: int) -> list[bytes]:
    """``count`` payloads of ``size`` bytes (binary) or characters (base64)."""
    if kind == "binary":
        return [os.urandom(size) for _ in range(count)]
    if kind == "base64":
        # Three raw bytes per four characters; cut to the exact size. The
        # encoder pads only at the end, and the cut removes that padding.
        raw = size * 3 // 4 + 3
        return [base64.b64encode(os.urandom(raw))[:size] for _ in range(count)]
    raise ValueError(f"unknown garbage kind {kind!r}")


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Unconnected on purpose: ICMP port-unreachable answers (sniffing mode
    # has no listener) are then never reported back as send errors.
    return sock


def run_knocks(job: dict[str, Any]) -> dict[str, Any]:
    dest = (job["host"], int(job["port"]))
    packets = [p.encode("ascii") for p in job["packets"]][:MAX_KNOCKS]
    gaps = [min(float(g), 5.0) for g in job["gaps"]]
    sent: list[float] = []
    deadline = time.monotonic() + MAX_SECONDS
    with _socket() as sock:
        for packet, gap in zip(packets, gaps, strict=False):
            time.sleep(gap)
            if time.monotonic() > deadline:
                break
            stamp = time.monotonic()
            sock.sendto(packet, dest)
            sent.append(stamp)
    return {"sent": sent}


def _paced(sock: socket.socket, dest: tuple[str, int], pool: list[bytes], total: int,
           rate: float, duration: float, knock: bytes | None = None,
           knock_at: float = 0.0) -> dict[str, Any]:
    """Send ``total`` datagrams at ``rate`` per second (0: flat out).

    Paced by the monotonic clock: each 1 ms tick sends what is due, so a
    late tick catches up in one burst instead of drifting. The knock, if
    any, goes out at ``knock_at`` seconds into the burst.
    """
    sent = errors = 0
    knock_sent: float | None = None
    worst_lag = 0.0
    start = time.monotonic()
    give_up = start + (duration + 1.0 if rate > 0 else MAX_SECONDS)
    while sent < total:
        now = time.monotonic()
        if now >= give_up:
            break  # the sender fell more than a second behind (or hit the cap)
        if knock is not None and knock_sent is None and now - start >= knock_at:
            knock_sent = time.monotonic()
            sock.sendto(knock, dest)
        if rate > 0:
            due = min(int((now - start) * rate) + 1, total)
            if due - sent > 1:
                worst_lag = max(worst_lag, (due - sent - 1) / rate)
        else:
            due = min(sent + 1024, total)
        while sent < due:
            try:
                sock.sendto(pool[sent % len(pool)], dest)
            except OSError:
                errors += 1  # ENOBUFS and the like: counted, not retried
            sent += 1
        if rate > 0:
            time.sleep(0.001)
    end = time.monotonic()
    return {"sent": sent, "errors": errors, "start": start, "end": end,
            "knock_sent": knock_sent, "worst_lag": worst_lag,
            "rate": sent / (end - start) if end > start else 0.0}


def run_blast(job: dict[str, Any]) -> dict[str, Any]:
    dest = (job["host"], int(job["port"]))
    count = min(int(job["count"]), MAX_PACKETS)
    rate = min(max(float(job.get("rate", 0.0)), 0.0), MAX_RATE)
    pool = garbage_pool(job["kind"], int(job["size"]), min(count, POOL_SIZE))
    with _socket() as sock:
        return _paced(sock, dest, pool, count, rate, count / rate if rate else MAX_SECONDS)


def run_flood(job: dict[str, Any]) -> dict[str, Any]:
    dest = (job["host"], int(job["port"]))
    rate = min(max(float(job["rate"]), 1.0), MAX_RATE)
    duration = min(float(job["duration"]), MAX_SECONDS)
    total = min(int(rate * duration), MAX_PACKETS)
    pool = garbage_pool(job["kind"], int(job["size"]), min(total, POOL_SIZE))
    with _socket() as sock:
        return _paced(sock, dest, pool, total, rate, duration,
                      knock=str(job["knock"]).encode("ascii"),
                      knock_at=float(job["knock_at"]))


JOBS = {"knocks": run_knocks, "blast": run_blast, "flood": run_flood}


def main() -> int:
    job = json.loads(sys.stdin.read(1 << 22))
    result = JOBS[job["job"]](job)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
