# NftablesFirewall against the real kernel: a fw4-shaped ruleset in a server
# namespace, real TCP/UDP traffic from a client namespace over a veth pair.
#
# The firewall runs inside the server namespace in a firewall_agent.py child
# (libnftables acts on the caller's namespace, and the host's ruleset must
# never be touched); every test runs with both runners. Sabotage "behind the
# daemon's back" is done with `ip netns exec <ours> nft ...`. Every wait is
# bounded; netns() kills what is left inside a namespace and deletes it.

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import pytest
from firewall_agent import AgentClient, AgentError
from netns import Namespace, VethPair, netns, requires_root, veth_pair

RULESET = Path(__file__).resolve().parent / "data" / "fw4-ruleset.nft"
RUNNERS = ["lib", "cmd"]
PORT, OTHER_PORT = 2222, 2223
SECOND_CLIENT = "10.201.0.3"
GRANT_SECONDS = 3
EXPIRY_WAIT = 12.0  # seconds; far above GRANT_SECONDS, bounds every expiry wait

pytestmark = [pytest.mark.root, requires_root]

# Echo server for the server namespace: TCP and UDP on each port in argv.
SERVER = r"""
import selectors, socket, sys, time
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[1:]):
    t = socket.socket()
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", port)); t.listen(16); t.setblocking(False)
    sel.register(t, selectors.EVENT_READ, "accept")
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", port))
    sel.register(u, selectors.EVENT_READ, "udp")
print("ready", flush=True)
end = time.monotonic() + 120
while time.monotonic() < end:
    for key, _ in sel.select(1.0):
        s = key.fileobj
        if key.data == "accept":
            c, _ = s.accept()
            sel.register(c, selectors.EVENT_READ, "conn")
        elif key.data == "udp":
            data, peer = s.recvfrom(2048)
            s.sendto(data, peer)
        else:
            try:
                data = s.recv(2048)
            except OSError:
                data = b""
            if data:
                s.sendall(data)
            else:
                sel.unregister(s)
                s.close()
"""

# One connection attempt from the client namespace: open/refused/timeout.
PROBE = r"""
import socket, sys
proto, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.settimeout(1.5)
s.bind((src, 0))
try:
    s.connect((dst, port))
    s.sendall(b"probe")
    print("open" if s.recv(64) == b"probe" else "garbled")
except ConnectionRefusedError:
    print("refused")
except TimeoutError:
    print("timeout")
except OSError as exc:
    print("error", exc.errno)
"""

# A connection opened while granted, used again on a line from stdin.
HOLD = r"""
import socket, sys
s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=3,
                             source_address=(sys.argv[1], 0))
print("connected", flush=True)
sys.stdin.readline()
s.sendall(b"still-here")
print("echo", s.recv(64).decode(), flush=True)
"""


@dataclass
class Lab:
    pair: VethPair
    agent: AgentClient
    runner: str

    @property
    def server(self) -> Namespace:
        return self.pair.server

    def probe(self, proto: str, port: int, *, src: str | None = None) -> str:
        out = self.pair.client.run(sys.executable, "-c", PROBE, proto,
                                   src or self.pair.client_ip, self.pair.server_ip, str(port))
        return out.stdout.strip()

    def nft(self, script: str) -> None:
        """Change the ruleset behind the agent's back (our namespace only)."""
        self.server.run("nft", "-f", "-", input=script)

    def input_rules(self) -> list[dict[str, Any]]:
        out = self.server.run("nft", "-j", "list", "chain", "inet", "fw4", "input").stdout
        return [i["rule"] for i in json.loads(out)["nftables"] if "rule" in i]

    def our_rules(self) -> list[dict[str, Any]]:
        return [r for r in self.input_rules() if r.get("comment") == "fwknopd"]

    def wait_until_expired(self) -> None:
        deadline = time.monotonic() + EXPIRY_WAIT
        while self.agent.list_grants():
            assert time.monotonic() < deadline, "grant did not expire in time"
            time.sleep(0.2)


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        assert sel.select(timeout), "child printed nothing in time"
        return proc.stdout.readline().decode().strip()


@pytest.fixture(params=RUNNERS)
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    with veth_pair() as pair:
        pair.server.run("nft", "-f", str(RULESET))
        pair.client.run("ip", "addr", "add", f"{SECOND_CLIENT}/24", "dev", pair.client_if)
        server = pair.server.popen(sys.executable, "-c", SERVER, str(PORT), str(OTHER_PORT),
                                   stdout=subprocess.PIPE)
        agent = AgentClient(pair.server.argv(), request.param)
        try:
            assert _read_line(server, 10) == "ready"
            yield Lab(pair, agent, request.param)
        finally:
            agent.close()
            server.kill()
            server.wait(timeout=5)
            assert server.stdout is not None
            server.stdout.close()


def test_firewall_nftables_start_adds_set_and_rule_once(lab: Lab) -> None:
    """start() twice, and again from a restarted daemon: one set, one rule, on top."""
    lab.agent.call("start")
    lab.agent.call("start")
    restarted = AgentClient(lab.server.argv(), lab.runner)
    try:
        restarted.call("start")
    finally:
        restarted.close()
    assert len(lab.our_rules()) == 1
    assert lab.input_rules()[0].get("comment") == "fwknopd"
    listing = lab.server.run("nft", "list", "set", "inet", "fw4", "fwknopd_allow4").stdout
    assert "type ipv4_addr . inet_proto . inet_service" in listing
    assert "flags timeout" in listing


def test_firewall_nftables_grant_opens_only_the_granted_flow(lab: Lab) -> None:
    """Closed before; open for that source, proto and port only; closed after timeout."""
    lab.agent.call("start")
    assert lab.probe("tcp", PORT) == "refused"
    lab.agent.grant(lab.pair.client_ip, "tcp", PORT, GRANT_SECONDS)
    assert lab.probe("tcp", PORT) == "open"
    assert lab.probe("tcp", OTHER_PORT) == "refused"
    assert lab.probe("tcp", PORT, src=SECOND_CLIENT) == "refused"
    assert lab.probe("udp", PORT) == "refused"
    lab.wait_until_expired()
    assert lab.probe("tcp", PORT) == "refused"


def test_firewall_nftables_udp_grant(lab: Lab) -> None:
    lab.agent.grant(lab.pair.client_ip, "udp", PORT, GRANT_SECONDS)
    assert lab.probe("udp", PORT) == "open"
    assert lab.probe("tcp", PORT) == "refused"


def test_firewall_nftables_established_connection_survives_expiry(lab: Lab) -> None:
    """fw4's conntrack rule keeps a session that began while granted."""
    lab.agent.grant(lab.pair.client_ip, "tcp", PORT, GRANT_SECONDS)
    hold = lab.pair.client.popen(sys.executable, "-c", HOLD, lab.pair.client_ip,
                                 lab.pair.server_ip, str(PORT),
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert _read_line(hold, 10) == "connected"
        lab.wait_until_expired()
        assert lab.probe("tcp", PORT) == "refused"
        out, _ = hold.communicate(b"go\n", timeout=10)
        assert out.decode().strip() == "echo still-here"
    finally:
        hold.kill()
        hold.wait(timeout=5)


def test_firewall_nftables_regrant_sets_the_new_timeout(lab: Lab) -> None:
    """A repeated knock resets the timeout to the new value, longer or shorter."""
    source = lab.pair.client_ip
    lab.agent.grant(source, "tcp", PORT, 2)
    (only,) = lab.agent.list_grants()
    assert only["source"] == source and only["proto"] == "tcp" and only["port"] == PORT
    assert 0 <= only["expires_in"] <= 2
    lab.agent.grant(source, "tcp", PORT, 300)
    (only,) = lab.agent.list_grants()
    assert 295 <= only["expires_in"] <= 300
    lab.agent.grant(source, "tcp", PORT, 60)
    (only,) = lab.agent.list_grants()
    assert 55 <= only["expires_in"] <= 60


def test_firewall_nftables_flush_removes_every_grant(lab: Lab) -> None:
    lab.agent.grant(lab.pair.client_ip, "tcp", PORT, 300)
    lab.agent.grant(SECOND_CLIENT, "tcp", OTHER_PORT, 300)
    assert len(lab.agent.list_grants()) == 2
    lab.agent.call("flush")
    assert lab.agent.list_grants() == []
    assert lab.probe("tcp", PORT) == "refused"


def test_firewall_nftables_close_leaves_grants_to_expire(lab: Lab) -> None:
    lab.agent.grant(lab.pair.client_ip, "tcp", PORT, 300)
    lab.agent.call("close")
    lab.agent.close()
    assert lab.probe("tcp", PORT) == "open"


def test_firewall_nftables_repairs_deleted_set(lab: Lab) -> None:
    """Someone removes our rule and set (a set in use cannot go alone)."""
    lab.agent.call("start")
    (rule,) = lab.our_rules()
    lab.nft(f"delete rule inet fw4 input handle {rule['handle']}\n"
            "delete set inet fw4 fwknopd_allow4\n")
    lab.agent.grant(lab.pair.client_ip, "tcp", PORT, 30)
    assert lab.probe("tcp", PORT) == "open"
    assert len(lab.our_rules()) == 1


def test_firewall_nftables_repairs_flushed_chain(lab: Lab) -> None:
    """The set stays but our rule is gone: the grant must not silently do nothing."""
    lab.agent.grant(lab.pair.client_ip, "tcp", PORT, 30)
    lab.nft("flush chain inet fw4 input\n")
    assert lab.probe("tcp", PORT) != "open"
    lab.agent.grant(lab.pair.client_ip, "tcp", OTHER_PORT, 30)
    assert lab.probe("tcp", OTHER_PORT) == "open"
    assert len(lab.our_rules()) == 1


def test_firewall_nftables_repairs_after_fw4_reload(lab: Lab) -> None:
    """Re-loading the ruleset (fw4 reload) flushes rules; the set and its grants stay."""
    lab.agent.grant(lab.pair.client_ip, "tcp", PORT, 300)
    lab.server.run("nft", "-f", str(RULESET))
    assert [g["port"] for g in lab.agent.list_grants()] == [PORT]
    assert lab.probe("tcp", PORT) == "refused"
    lab.agent.grant(lab.pair.client_ip, "tcp", OTHER_PORT, 300)
    assert lab.probe("tcp", PORT) == "open"
    assert lab.probe("tcp", OTHER_PORT) == "open"


def test_firewall_nftables_repairs_after_fw4_restart(lab: Lab) -> None:
    """The table is deleted and rebuilt: set, guard and rule all come back."""
    lab.agent.grant(lab.pair.client_ip, "tcp", PORT, 300)
    lab.nft("delete table inet fw4\n")
    lab.server.run("nft", "-f", str(RULESET))
    lab.agent.grant(lab.pair.client_ip, "tcp", OTHER_PORT, 300)
    assert lab.probe("tcp", OTHER_PORT) == "open"
    assert lab.probe("tcp", PORT) == "refused"
    assert len(lab.our_rules()) == 1


def test_firewall_nftables_rebuilt_table_never_loses_a_fw4_rule(lab: Lab) -> None:
    """After a rebuild that re-declares our set, the old rule handle names a fw4 rule.

    The rebuilt `input` chain has more rules than before, so the handle our
    rule had now belongs to one of them. The grant must repair (the guard
    chain is gone with the old table) instead of replacing that rule.
    """
    lab.agent.call("start")
    (rule,) = lab.our_rules()
    handle = rule["handle"]
    assert isinstance(handle, int)
    lab.nft("delete table inet fw4\n")
    # Unreachable (after the final jump) but real rules, enough to pass the old handle.
    padding = "".join(f"add rule inet fw4 input udp dport {9000 + i} drop\n"
                      for i in range(handle + 5))
    lab.nft(RULESET.read_text()
            + "add set inet fw4 fwknopd_allow4 "
              "{ type ipv4_addr . inet_proto . inet_service; flags timeout; }\n"
            + padding)
    before = lab.input_rules()
    assert handle in {r["handle"] for r in before}
    lab.agent.grant(lab.pair.client_ip, "tcp", PORT, 30)
    after = lab.input_rules()
    assert all(r in after for r in before)
    assert lab.probe("tcp", PORT) == "open"
    assert len(lab.our_rules()) == 1


@pytest.mark.parametrize("runner", RUNNERS)
def test_firewall_nftables_missing_table_is_a_clear_error(runner: str) -> None:
    with netns("fw") as ns:
        agent = AgentClient(ns.argv(), runner)
        try:
            for op, args in (("start", {}), ("grant", {"source": "10.201.0.2", "proto": "tcp",
                                                       "port": PORT, "timeout": 3})):
                with pytest.raises(AgentError) as caught:
                    agent.call(op, **args)
                assert caught.value.kind == "FirewallError"
                assert caught.value.message == (
                    "nftables table inet fw4 not found: is firewall4 running?")
        finally:
            agent.close()


@pytest.mark.parametrize("runner", RUNNERS)
def test_firewall_nftables_missing_chain_is_a_clear_error(runner: str) -> None:
    with netns("fw") as ns:
        ns.run("nft", "-f", str(RULESET))
        agent = AgentClient(ns.argv(), runner, chain="input_lan")
        try:
            with pytest.raises(AgentError) as caught:
                agent.call("start")
            assert caught.value.message.startswith(
                "nftables chain input_lan not found in table inet fw4: is firewall4 running?")
        finally:
            agent.close()


def test_firewall_nftables_grant_latency() -> None:
    """Not asserted: prints how long one grant takes with each runner."""
    samples: dict[str, list[float]] = {}
    with netns("fw") as ns:
        ns.run("nft", "-f", str(RULESET))
        for runner in RUNNERS:
            agent = AgentClient(ns.argv(), runner)
            try:
                assert agent.call("runner") == {"lib": "LibNftablesRunner",
                                                "cmd": "NftCommandRunner"}[runner]
                agent.call("start")
                samples[runner] = []
                for i in range(40):
                    agent.grant(f"10.201.1.{i + 1}", "tcp", 22, 30)
                    samples[runner].append(agent.last_ms)
            finally:
                agent.close()
    lines = [f"  {r:>3}: median {median(s):.2f} ms, max {max(s):.2f} ms over {len(s)} grants"
             for r, s in samples.items()]
    print("\ngrant latency (NftablesFirewall.grant, target <= 5 ms knock-to-open):",
          *lines, sep="\n")
