# A firewall backend living inside a test network namespace, driven over a
# pipe, plus the client the tests use to drive it.
#
# Why: libnftables works on the network namespace of the process that calls
# it, so the real NftablesFirewall must run in a child started with
# `ip netns exec NS python firewall_agent.py RUNNER`, never in the pytest
# process (that would touch the host's ruleset). The nft-binary runner is
# driven the same way, so both runners see the same harness and the agent
# keeps one firewall object (one libnftables context) for its whole life,
# as the daemon does.
#
# Protocol: one JSON object per line each way. Requests carry "op"
# (runner, start, grant, list, flush, close); replies are
# {"ok": true, "value": ..., "ms": elapsed} or
# {"ok": false, "error": class name, "message": text}.
# The agent exits when its stdin closes or after MAX_LIFETIME seconds.

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

__all__ = ["AgentClient", "AgentError"]

MAX_LIFETIME = 300  # seconds; a stuck test must not leave the agent behind
REPLY_TIMEOUT = 15.0  # seconds for one request (a repair is a few nft calls)
AGENT = Path(__file__).resolve()


class AgentError(Exception):
    """The backend inside the agent raised; ``kind`` is the class name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class AgentClient:
    """Drives a firewall_agent.py child; argv_prefix enters the namespace."""

    def __init__(self, argv_prefix: Sequence[str], runner: str, *,
                 table: tuple[str, str] = ("inet", "fw4"), chain: str = "input",
                 set_name: str = "fwknopd_allow4") -> None:
        argv = [*argv_prefix, sys.executable, str(AGENT), runner,
                table[0], table[1], chain, set_name]
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._buffer = b""
        self.last_ms = 0.0

    def call(self, op: str, **args: Any) -> Any:
        """Send one request and return its value; AgentError if it raised."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        self._proc.stdin.flush()
        reply = json.loads(self._read_line())
        if not reply["ok"]:
            raise AgentError(reply["error"], reply["message"])
        self.last_ms = float(reply["ms"])
        return reply["value"]

    def grant(self, source: str, proto: str, port: int, timeout: int) -> None:
        self.call("grant", source=source, proto=proto, port=port, timeout=timeout)

    def list_grants(self) -> list[dict[str, Any]]:
        value = self.call("list")
        assert isinstance(value, list)
        return value

    def close(self) -> None:
        """Stop the agent (bounded); safe to call twice."""
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                self._proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def _read_line(self) -> bytes:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + REPLY_TIMEOUT
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise TimeoutError("firewall agent did not answer in time")
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EOFError(f"firewall agent exited ({self._proc.poll()})")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


def _serve(runner_kind: str, family: str, table: str, chain: str, set_name: str) -> None:
    # Imported here so the tests importing AgentClient need nothing extra.
    from fwknopd_uci.firewall import LibNftablesRunner, NftablesFirewall, NftCommandRunner
    from fwknopd_uci.model import Grant

    runner: LibNftablesRunner | NftCommandRunner
    runner = LibNftablesRunner() if runner_kind == "lib" else NftCommandRunner()
    firewall = NftablesFirewall((family, table), chain, set_name, runner=runner)
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        started = time.perf_counter()
        try:
            value: Any = None
            if op == "runner":
                value = type(runner).__name__
            elif op == "start":
                firewall.start()
            elif op == "grant":
                firewall.grant(Grant(IPv4Address(request["source"]), request["proto"],
                                     request["port"], request["timeout"]))
            elif op == "list":
                value = [{"source": str(g.source), "proto": g.proto, "port": g.port,
                          "expires_in": g.expires_in} for g in firewall.list_grants()]
            elif op == "flush":
                firewall.flush()
            elif op == "close":
                firewall.close()
            else:
                raise ValueError(f"unknown op {op!r}")
            reply = {"ok": True, "value": value,
                     "ms": (time.perf_counter() - started) * 1000}
        except Exception as exc:  # noqa: BLE001 - every error goes back to the test
            reply = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    # The firewall does not close a runner it was given; the owner does.
    runner.close()


if __name__ == "__main__":
    signal.alarm(MAX_LIFETIME)
    _serve(*sys.argv[1:6])
