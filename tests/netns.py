# Network-namespace helpers for the tests that need real kernels parts
# (raw sockets, nftables, the real fwknop client).
#
# Every namespace made here carries a unique name with the "fwkt-" prefix and
# is deleted again by the context manager, also when the test fails. Only
# addresses inside these namespaces are ever used (10.201.0.0/16 by default).

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

__all__ = ["Namespace", "VethPair", "netns", "requires_root", "run", "veth_pair"]

requires_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 to create network namespaces",
)

COMMAND_TIMEOUT = 20  # seconds; no helper command may hang a test run


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None,
        timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run argv (never through a shell) and return the completed process."""
    return subprocess.run(list(argv), check=check, capture_output=True, text=True,
                          input=input, timeout=timeout)


@dataclass(frozen=True)
class Namespace:
    name: str

    def argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, *argv: str, check: bool = True, input: str | None = None,
            timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return run(self.argv(*argv), check=check, input=input, timeout=timeout)

    def popen(self, *argv: str, **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(*argv), **kwargs)  # type: ignore[call-overload]


@contextlib.contextmanager
def netns(tag: str = "t") -> Iterator[Namespace]:
    """A fresh namespace with only ``lo`` (up); deleted on exit."""
    ns = Namespace(f"fwkt-{tag}-{uuid.uuid4().hex[:6]}")
    run(["ip", "netns", "add", ns.name])
    try:
        ns.run("ip", "link", "set", "lo", "up")
        for knob in ("all", "default"):
            ns.run("sysctl", "-qw", f"net.ipv6.conf.{knob}.disable_ipv6=1", check=False)
        yield ns
    finally:
        # Kill whatever is still running inside, then remove the namespace.
        pids = run(["ip", "netns", "pids", ns.name], check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        run(["ip", "netns", "del", ns.name], check=False)


@dataclass(frozen=True)
class VethPair:
    server: Namespace
    client: Namespace
    server_if: str
    client_if: str
    server_ip: str
    client_ip: str


@contextlib.contextmanager
def veth_pair(subnet: str = "10.201.0", tag: str = "p") -> Iterator[VethPair]:
    """Two namespaces joined by a veth pair: server .1, client .2 in subnet/24."""
    with netns(f"{tag}s") as srv, netns(f"{tag}c") as cli:
        sif, cif = "veth-srv", "veth-cli"
        srv.run("ip", "link", "add", sif, "type", "veth", "peer", "name", cif,
                "netns", cli.name)
        srv.run("ip", "addr", "add", f"{subnet}.1/24", "dev", sif)
        cli.run("ip", "addr", "add", f"{subnet}.2/24", "dev", cif)
        srv.run("ip", "link", "set", sif, "up")
        cli.run("ip", "link", "set", cif, "up")
        yield VethPair(srv, cli, sif, cif, f"{subnet}.1", f"{subnet}.2")
