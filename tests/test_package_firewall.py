# The package's firewall4 includes (files/usr/share/nftables.d/) against the
# daemon's own nftables objects.
#
# What must hold on a router: fw4 puts table-post/fwknopd.nft inside
# `table inet fw4 { ... }` and chain-pre/input/fwknopd.nft at the top of its
# `input` chain on every start and reload. The set, guard chain and rule
# they declare must be exactly what NftablesFirewall.start() creates and
# looks for, so that the daemon finds them and adds nothing, and so that a
# `fw4 reload` (which flushes the table's rules) brings our rule back at
# once and keeps the set with its grants.
#
# The text comparison runs anywhere. The kernel tests run as root in
# namespaces from tests/netns.py: tests/data/fw4-ruleset.nft plays fw4's
# rendered ruleset, composed with the two includes the way fw4 renders
# them (`include "..."` lines), and the daemon's firewall runs in a
# firewall_agent.py child inside the namespace. The host's ruleset is never
# touched.

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from firewall_agent import AgentClient
from netns import VethPair, requires_root, veth_pair

from fwknopd_uci.firewall import FirewallError, NftablesFirewall
from fwknopd_uci.firewall.nftables import GUARD_SUFFIX, RULE_COMMENT

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
NFT_DIR = REPO / "files" / "usr" / "share" / "nftables.d"
TABLE_POST = NFT_DIR / "table-post" / "fwknopd.nft"
CHAIN_PRE = NFT_DIR / "chain-pre" / "input" / "fwknopd.nft"
RULESET = TESTS / "data" / "fw4-ruleset.nft"
PROBE = str(TESTS / "probe.py")
SET_NAME = "fwknopd_allow4"
PORT = 2222
GRANT_SECONDS = 300

# fw4's template opens chain `input` with this line; chain-pre comes next.
INPUT_HEADER = "type filter hook input priority filter; policy drop;\n"


def _statements(path: Path) -> list[str]:
    """The nft text of an include without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


class _RecordingRunner:
    """Answers start()'s listings with an empty fw4 table; keeps the scripts."""

    def __init__(self) -> None:
        self.scripts: list[str] = []

    def run(self, script: str, *, json_output: bool = False) -> str:
        self.scripts.append(script)
        if script == "list tables":
            return json.dumps({"nftables": [{"table": {"family": "inet", "name": "fw4"}}]})
        return json.dumps({"nftables": []})


def test_package_firewall_includes_spell_what_the_daemon_creates() -> None:
    """The includes declare the daemon's set type, guard chain and rule, word for word."""
    runner = _RecordingRunner()
    firewall = NftablesFirewall(runner=runner)
    with pytest.raises(FirewallError):
        firewall.start()  # our runner never lists the rule back; the script is what counts
    (script,) = [s for s in runner.scripts if s.startswith("add set")]
    add_set, add_chain, insert_rule = script.splitlines()
    # "add set inet fw4 NAME { type ...; flags timeout; }"
    spec = re.fullmatch(rf"add set inet fw4 {SET_NAME} \{{ (.*); \}}", add_set)
    assert spec is not None
    assert add_chain == f"add chain inet fw4 {SET_NAME}{GUARD_SUFFIX}"
    rule = insert_rule.removeprefix("insert rule inet fw4 input ")

    table_post = " ".join(_statements(TABLE_POST))
    assert table_post == (f"set {SET_NAME} {{ " + " ".join(spec[1].split("; ")) + " } "
                          f"chain {SET_NAME}{GUARD_SUFFIX} {{ }}")
    assert _statements(CHAIN_PRE) == [rule]
    assert rule.endswith(f'comment "{RULE_COMMENT}"')


def fw4_render(*, includes: bool = True) -> str:
    """tests/data/fw4-ruleset.nft with our includes where fw4 puts them."""
    text = RULESET.read_text()
    if not includes:
        return text
    assert text.count(INPUT_HEADER) == 1
    text = text.replace(INPUT_HEADER, f'{INPUT_HEADER}\t\tinclude "{CHAIN_PRE}"\n')
    body, brace, tail = text.rpartition("}")  # the end of `table inet fw4 {`
    return f'{body}\tinclude "{TABLE_POST}"\n{brace}{tail}'


@dataclass
class Router:
    pair: VethPair
    agent: AgentClient

    def fw4_reload(self, *, includes: bool = True) -> None:
        """What `fw4 reload` does: flush the table's rules, load the ruleset again."""
        self.pair.server.run("nft", "-f", "-", input=fw4_render(includes=includes))

    def table(self) -> list[dict[str, Any]]:
        """`inet fw4` as nft -j lists it, less what traffic and time change.

        Set elements count down and rule counters count packets; everything
        else (objects, handles, expressions) stays put unless changed.
        """
        out = self.pair.server.run("nft", "-j", "list", "table", "inet", "fw4").stdout
        items = json.loads(out)["nftables"]
        for item in items:
            item.get("set", {}).pop("elem", None)
            if "rule" in item:
                item["rule"]["expr"] = [e for e in item["rule"]["expr"] if "counter" not in e]
        return [i for i in items if "metainfo" not in i]

    def our_rules(self) -> list[dict[str, Any]]:
        return [i["rule"] for i in self.table()
                if "rule" in i and i["rule"]["chain"] == "input"
                and i["rule"].get("comment") == RULE_COMMENT]

    def first_input_rule(self) -> dict[str, Any]:
        return next(i["rule"] for i in self.table()
                    if "rule" in i and i["rule"]["chain"] == "input")

    def can_connect(self) -> bool:
        argv = [sys.executable, PROBE, "connect", self.pair.server_ip, str(PORT)]
        return self.pair.client.run(*argv, check=False).returncode == 0

    def granted_ports(self) -> list[int]:
        return [g["port"] for g in self.agent.list_grants()]


@pytest.fixture(params=["lib", "cmd"])
def router(request: pytest.FixtureRequest) -> Iterator[Router]:
    with veth_pair(tag="pkg") as pair:
        listener = pair.server.popen(sys.executable, PROBE, "listen", str(PORT),
                                     stdout=subprocess.PIPE)
        agent = AgentClient(pair.server.argv(), request.param)
        try:
            assert listener.stdout is not None
            assert listener.stdout.readline() == b"listening\n"
            yield Router(pair, agent)
        finally:
            agent.close()
            listener.kill()
            listener.wait(timeout=10)
            if listener.stdout is not None:
                listener.stdout.close()


@pytest.mark.root
@requires_root
def test_package_firewall_daemon_adds_nothing_to_the_included_objects(router: Router) -> None:
    """After fw4 loaded the includes, start() finds set, guard and rule; a grant works."""
    router.fw4_reload()
    loaded = router.table()
    assert router.first_input_rule().get("comment") == RULE_COMMENT
    assert [i["set"]["name"] for i in loaded if "set" in i] == [SET_NAME]
    assert any(i.get("chain", {}).get("name") == SET_NAME + GUARD_SUFFIX for i in loaded)

    router.agent.call("start")
    router.agent.call("start")
    assert router.table() == loaded  # same objects, same handles: nothing added
    assert not router.can_connect()
    router.agent.grant(router.pair.client_ip, "tcp", PORT, GRANT_SECONDS)
    assert router.can_connect()
    assert router.table() == loaded  # a grant only adds a set element


@pytest.mark.root
@requires_root
def test_package_firewall_grants_survive_fw4_reload(router: Router) -> None:
    """fw4 reload flushes every rule; the includes bring ours back, the set keeps its grants."""
    router.fw4_reload()
    router.agent.grant(router.pair.client_ip, "tcp", PORT, GRANT_SECONDS)
    before = router.table()

    router.fw4_reload()
    assert router.granted_ports() == [PORT]
    (grant,) = router.agent.list_grants()
    assert GRANT_SECONDS - 30 <= grant["expires_in"] <= GRANT_SECONDS
    # Open again at once, before the daemon does anything: the rule came from the include.
    assert router.can_connect()
    reloaded = router.table()
    assert len(router.our_rules()) == 1
    assert router.first_input_rule().get("comment") == RULE_COMMENT
    router.agent.call("start")
    assert router.table() == reloaded
    # Same objects as before the reload, only fw4's rules got new handles.
    assert [i for i in reloaded if "rule" not in i] == [i for i in before if "rule" not in i]


@pytest.mark.root
@requires_root
def test_package_firewall_daemon_before_the_first_fw4_reload(router: Router) -> None:
    """Installed, daemon started before fw4 read the includes: no duplicate after the reload."""
    router.fw4_reload(includes=False)
    router.agent.call("start")
    router.agent.grant(router.pair.client_ip, "tcp", PORT, GRANT_SECONDS)
    assert len(router.our_rules()) == 1

    router.fw4_reload()  # postinst's firewall reload, or the next wan ifup
    assert len(router.our_rules()) == 1
    assert router.first_input_rule().get("comment") == RULE_COMMENT
    assert router.granted_ports() == [PORT]
    assert router.can_connect()
    settled = router.table()
    router.agent.call("start")
    router.agent.grant(router.pair.client_ip, "tcp", PORT, GRANT_SECONDS)
    assert router.table() == settled
