# The report of scripts/benchmark.py: turns the raw numbers it collected
# into one plain-text table per run (machine, then one row per metric and
# mode with both daemons, the ratio ours / C, which direction is better and
# our target with PASS/MISS), followed by notes on anything that failed.
# Pure formatting: it reads the results dict and returns a string.

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["METRICS", "render_report"]

MODE_LABEL = {"sniff": "sniff", "udp": "-U udp"}
NOTE_WIDTH = 99  # notes are wrapped; the table and header lines are not


@dataclass(frozen=True)
class Metric:
    label: str
    better: str  # "lower" or "higher"; "" when a ratio means nothing
    get: Callable[[dict[str, Any]], float | None]
    fmt: str = "{:.1f}"
    target: tuple[str, float] | None = None  # ("<=" or ">=", value), for ours
    modes: tuple[str, ...] = ("sniff", "udp")


def _dig(run: dict[str, Any], *path: str) -> Any:
    node: Any = run
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _lat(stat: Callable[[list[float]], float]) -> Callable[[dict[str, Any]], float | None]:
    def get(run: dict[str, Any]) -> float | None:
        ms = _dig(run, "latency", "ms")
        return stat(ms) if ms else None
    return get


def _field(*path: str, scale: float = 1.0) -> Callable[[dict[str, Any]], float | None]:
    def get(run: dict[str, Any]) -> float | None:
        value = _dig(run, *path)
        return None if value is None else float(value) * scale
    return get


def _median_of(*path: str) -> Callable[[dict[str, Any]], float | None]:
    def get(run: dict[str, Any]) -> float | None:
        values = _dig(run, *path)
        return statistics.median(values) if values else None
    return get


def _opened(run: dict[str, Any]) -> float | None:
    lat = _dig(run, "latency")
    if not isinstance(lat, dict) or "sent" not in lat:
        return None
    return 100.0 * float(lat["opened"]) / max(int(lat["sent"]), 1)


METRICS = [
    Metric("knock-to-open min, ms", "lower", _lat(min), "{:.2f}"),
    Metric("knock-to-open median, ms", "lower", _lat(statistics.median), "{:.2f}",
           ("<=", 5.0)),
    Metric("knock-to-open max, ms", "lower", _lat(max), "{:.2f}"),
    Metric("knock-to-open first knock, ms", "lower", _lat(lambda ms: ms[0]), "{:.2f}"),
    Metric("knocks opened, %", "higher", _opened, "{:.0f}"),
    Metric("binary garbage, pkts per CPU-s", "higher",
           _field("blast_binary", "per_cpu_second"), "{:,.0f}", (">=", 10_000.0)),
    Metric("binary garbage, pkts per wall-s", "higher",
           _field("blast_binary", "per_wall_second"), "{:,.0f}"),
    Metric("binary garbage, processed %", "higher",
           _field("blast_binary", "processed_fraction", scale=100.0), "{:.0f}"),
    Metric("base64 garbage, pkts per CPU-s", "higher",
           _field("blast_base64", "per_cpu_second"), "{:,.0f}", (">=", 10_000.0)),
    Metric("base64 garbage, pkts per wall-s", "higher",
           _field("blast_base64", "per_wall_second"), "{:,.0f}"),
    Metric("base64 garbage, processed %", "higher",
           _field("blast_base64", "processed_fraction", scale=100.0), "{:.0f}"),
    Metric("binary garbage, no -v, pkts per CPU-s", "higher",
           _field("startup", "quiet_blast", "binary", "per_cpu_second"), "{:,.0f}",
           modes=("udp",)),
    Metric("base64 garbage, no -v, pkts per CPU-s", "higher",
           _field("startup", "quiet_blast", "base64", "per_cpu_second"), "{:,.0f}",
           modes=("udp",)),
    Metric("knock during flood, ms", "lower", _field("flood", "knock_ms"), "{:.2f}",
           ("<=", 100.0)),
    Metric("flood garbage processed, %", "higher",
           _field("flood", "processed_fraction", scale=100.0), "{:.0f}"),
    Metric("idle VmRSS, MB", "lower", _field("startup", "status_kb", "VmRSS", scale=1 / 1024),
           "{:.1f}", ("<=", 20.0)),
    Metric("idle RssAnon, MB", "lower",
           _field("startup", "status_kb", "RssAnon", scale=1 / 1024), "{:.1f}"),
    Metric("VmRSS after the -v run, MB", "lower",
           _field("rss_after_kb", "VmRSS", scale=1 / 1024), "{:.1f}"),
    Metric("start to ready line, ms (median)", "lower", _median_of("startup", "ready_ms"),
           "{:.0f}"),
    Metric("start to socket open, ms (median)", "lower", _median_of("startup", "socket_ms"),
           "{:.0f}"),
]


def _cell(metric: Metric, value: float | None, run: dict[str, Any] | None) -> str:
    if value is not None:
        return metric.fmt.format(value)
    if run is None:
        return "not run"
    if metric.label.startswith("knock during flood") and _dig(run, "flood", "opened") is False:
        return "not opened"
    return "-"


def _verdict(metric: Metric, value: float | None, run: dict[str, Any] | None) -> str:
    if metric.target is None:
        return ""
    op, goal = metric.target
    text = f"{op} {metric.fmt.format(goal)}"
    if run is None:
        return f"{text} (not run)"
    if value is None:
        return f"{text} MISS"
    ok = value <= goal if op == "<=" else value >= goal
    return f"{text} {'PASS' if ok else 'MISS'}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {2, 3, 4}

    def line(cells: list[str]) -> str:
        out = [c.rjust(w) if i in right else c.ljust(w)
               for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(out) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def _rate(rate: float | None) -> str:
    return "full speed" if not rate else f"{rate:,.0f} pps offered"


def render_report(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    args = results.get("args", {})
    out = [
        "",
        "fwknopd-uci vs C fwknopd 2.6.10: side-by-side benchmark",
        (f"machine: nproc {m.get('nproc')} ({m.get('cpu', '?')}), kernel {m.get('kernel')}, "
         f"python {m.get('python')}, cryptography {m.get('cryptography')}"),
        f"         {m.get('fwknopd')}; {m.get('nft')}",
        (f"run: {'quick' if args.get('quick') else 'full'}; {args.get('knocks')} knocks "
         f"(gaps 0.25-0.45 s), {args.get('blast')} garbage datagrams per kind at "
         f"{_rate(args.get('blast_rate'))},"),
        (f"     flood {args.get('flood_kind')} at {args.get('flood_rate'):.0f} pps for "
         f"{args.get('flood_seconds')} s (knock at {args.get('knock_at')} s), "
         f"idle {args.get('idle_seconds')} s; knocks built by {results.get('encoder', '?')}"),
        f"ruleset: {results.get('ruleset')}; elapsed {results.get('elapsed_s', 0):.0f} s",
        "",
    ]
    runs = results.get("runs", {})
    rows = []
    for metric in METRICS:
        for mode in args.get("modes", []):
            if mode not in metric.modes:
                continue
            c_run = _dig(runs, "c", mode)
            o_run = _dig(runs, "ours", mode)
            c_val = metric.get(c_run) if c_run else None
            o_val = metric.get(o_run) if o_run else None
            ratio = ""
            if c_val and o_val is not None and metric.better:
                ratio = f"{o_val / c_val:.3g}"
            rows.append([metric.label, MODE_LABEL.get(mode, mode), _cell(metric, c_val, c_run),
                         _cell(metric, o_val, o_run), ratio,
                         f"{metric.better} is better" if metric.better else "",
                         _verdict(metric, o_val, o_run)])
    out.append(_table(rows, ["metric", "mode", "C fwknopd", "fwknopd-uci", "ours/C",
                             "direction", "target (ours)"]))
    out.append("")
    out.append("notes:")
    out.append("- latency: client sendto() to the grant line of `nft monitor` in the server "
               "namespace (C: iptables-nft 'add rule', ours: 'add element').")
    out.append("- per CPU-s: processed / (daemon CPU time incl. reaped children); per wall-s: "
               "processed / (first send .. last per-packet log line); both at -v.")
    out.append("- C in sniff mode reads at most 100 packets per 100 ms (PCAP_DISPATCH_COUNT, "
               "PCAP_LOOP_SLEEP): cheap per packet, so its per CPU-s figure is high, but its "
               "per wall-s figure (about 1,000) is what it really handles.")
    out.append("- 'no -v' rows: -U mode only, processed = sent - socket drops "
               "(/proc/PID/net/udp), CPU as above.")
    out.append(f"- start-up times include `ip netns exec` (about "
               f"{results.get('netns_exec_ms', 0):.1f} ms here).")
    commits = [f"{w}/{mode}" for w, modes in runs.items() for mode, run in modes.items()
               if (_dig(run, "latency", "seen_by", "commit") or 0) > 0
               or _dig(run, "flood", "seen_by") == "commit"]
    if commits:
        out.append(f"- {', '.join(commits)}: some grants were timed by the daemon's own "
                   "transaction commit line ('# new generation N by process PID'), because "
                   "nft 1.0.6's monitor lost the set from its cache after a 'replace rule' and "
                   "printed 'W: Received event for an unknown set.' instead of the element.")
    if "encoder_note" in results:
        out.append(f"- encoder: {results['encoder_note']}")
    if "ours_unavailable" in results:
        out.append(f"- fwknopd-uci NOT RUN: {results['ours_unavailable']}")
    if "aborted" in results:
        out.append(f"- run ABORTED: {results['aborted']}")
    for which, modes in runs.items():
        for mode, run in modes.items():
            for phase, value in run.items():
                if isinstance(value, dict) and "error" in value:
                    out.append(f"- {which}/{mode} {phase}: {value['error']}")
            for key in ("error", "died"):
                if key in run:
                    out.append(f"- {which}/{mode} {key}: {run[key]}")
            if run.get("exit") not in (None, 0):
                out.append(f"- {which}/{mode}: exit status after SIGTERM was {run['exit']}")
    return "\n".join(textwrap.fill(line, NOTE_WIDTH, subsequent_indent="  ",
                                       break_on_hyphens=False)
                     if line.startswith("- ") else line for line in out)
