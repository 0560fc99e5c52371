# NftablesFirewall without a kernel: the scripts it builds, how it finds and
# repairs its objects, what it refuses, and how it reads nft's JSON. A small
# scripted runner answers the listings and records every script; the real
# kernel is exercised in test_firewall_nftables_netns.py.

from __future__ import annotations

import json
from ipaddress import IPv4Address
from typing import Any

import pytest

from fwknopd_uci.firewall import (
    NO_EXPIRY,
    ActiveGrant,
    Firewall,
    FirewallError,
    NftablesFirewall,
)
from fwknopd_uci.model import Grant

SOURCE = IPv4Address("192.0.2.1")


def _rule(handle: int, *, set_name: str = "fwknopd_allow4", comment: str | None = "fwknopd",
          expr: list[Any] | None = None) -> dict[str, Any]:
    key = [{"payload": {"protocol": "ip", "field": "saddr"}}, {"meta": {"key": "l4proto"}},
           {"payload": {"protocol": "th", "field": "dport"}}]
    rule: dict[str, Any] = {
        "family": "inet", "table": "fw4", "chain": "input", "handle": handle,
        "expr": expr if expr is not None else [
            {"match": {"op": "==", "left": {"concat": key}, "right": f"@{set_name}"}},
            {"accept": None}],
    }
    if comment is not None:
        rule["comment"] = comment
    return rule


def _doc(*items: dict[str, Any]) -> str:
    return json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}, *items]}) + "\n"


class ScriptedRunner:
    """Answers the listings NftablesFirewall makes; records every script.

    ``fail`` holds substrings: the next script containing one fails (once).
    """

    def __init__(self, *, rules: list[dict[str, Any]] | None = None,
                 tables: tuple[tuple[str, str], ...] = (("inet", "fw4"),)) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.rules = rules if rules is not None else [_rule(4, comment=None, expr=[])]
        self.tables = tables
        self.set_doc = _doc()
        self.fail: list[str] = []
        self.closed = 0
        self._next_handle = 50

    def run(self, script: str, *, json_output: bool = False) -> str:
        self.calls.append((script, json_output))
        for marker in self.fail:
            if marker in script:
                self.fail.remove(marker)
                raise FirewallError(f"nft: injected failure ({marker})")
        if script == "list tables":
            return _doc(*({"table": {"family": f, "name": n}} for f, n in self.tables))
        if script.startswith("list chain"):
            return _doc(*({"rule": r} for r in self.rules))
        if script.startswith("list set"):
            return self.set_doc
        for line in script.splitlines():
            if line.startswith("insert rule"):
                words = line.split()
                set_name = next(w[1:] for w in words if w.startswith("@"))
                rule = _rule(self._next_handle, set_name=set_name)
                rule["chain"] = words[4]
                self.rules.insert(0, rule)
                self._next_handle += 1
            elif line.startswith("delete rule"):
                handle = int(line.rsplit(" ", 1)[1])
                self.rules = [r for r in self.rules if r["handle"] != handle]
        return ""

    def close(self) -> None:
        self.closed += 1

    def scripts(self) -> list[str]:
        return [s for s, _ in self.calls]


def test_firewall_nftables_start_creates_set_guard_and_rule() -> None:
    runner = ScriptedRunner()
    NftablesFirewall(runner=runner).start()
    assert runner.calls == [
        ("list tables", True),
        ("list chain inet fw4 input", True),
        (("add set inet fw4 fwknopd_allow4 "
          "{ type ipv4_addr . inet_proto . inet_service; flags timeout; }\n"
          "add chain inet fw4 fwknopd_allow4_guard\n"
          "insert rule inet fw4 input ip saddr . meta l4proto . th dport @fwknopd_allow4 "
          'accept comment "fwknopd"\n'), False),
        ("list chain inet fw4 input", True),
    ]


def test_firewall_nftables_grant_is_one_transaction() -> None:
    """After start() every grant is exactly one nft call, with this script."""
    runner = ScriptedRunner()
    firewall = NftablesFirewall(runner=runner)
    firewall.start()
    before = len(runner.calls)
    firewall.grant(Grant(SOURCE, "tcp", 22, 30))
    firewall.grant(Grant(SOURCE, "udp", 53, 5))
    assert len(runner.calls) == before + 2
    assert runner.calls[before] == ((
        "flush chain inet fw4 fwknopd_allow4_guard\n"
        "add element inet fw4 fwknopd_allow4 { 192.0.2.1 . tcp . 22 timeout 30s }\n"
        "delete element inet fw4 fwknopd_allow4 { 192.0.2.1 . tcp . 22 }\n"
        "add element inet fw4 fwknopd_allow4 { 192.0.2.1 . tcp . 22 timeout 30s }\n"
        "replace rule inet fw4 input handle 50 ip saddr . meta l4proto . th dport "
        '@fwknopd_allow4 accept comment "fwknopd"\n'), False)
    assert "{ 192.0.2.1 . udp . 53 timeout 5s }" in runner.calls[before + 1][0]


def test_firewall_nftables_grant_starts_first_when_needed() -> None:
    runner = ScriptedRunner()
    NftablesFirewall(runner=runner).grant(Grant(SOURCE, "tcp", 22, 30))
    assert runner.scripts()[:2] == ["list tables", "list chain inet fw4 input"]
    assert runner.scripts()[-1].startswith("flush chain inet fw4 fwknopd_allow4_guard\n")


def test_firewall_nftables_start_keeps_an_existing_rule() -> None:
    runner = ScriptedRunner(rules=[_rule(4, comment=None, expr=[]), _rule(7)])
    firewall = NftablesFirewall(runner=runner)
    firewall.start()
    firewall.start()
    assert not any("insert rule" in s for s in runner.scripts())
    firewall.grant(Grant(SOURCE, "tcp", 22, 30))
    assert "replace rule inet fw4 input handle 7 " in runner.scripts()[-1]


def test_firewall_nftables_start_removes_duplicate_rules() -> None:
    runner = ScriptedRunner(rules=[_rule(7), _rule(4, comment=None, expr=[]), _rule(9)])
    NftablesFirewall(runner=runner).start()
    setup = runner.scripts()[2]
    assert "delete rule inet fw4 input handle 9\n" in setup
    assert "handle 7" not in setup and "insert rule" not in setup


def test_firewall_nftables_recognises_its_rule_by_comment_and_set() -> None:
    """A newer nft may spell the expression differently; comment plus set still match."""
    odd = _rule(8, expr=[{"match": {"op": "==", "left": {"concat": []},
                                    "right": "@fwknopd_allow4"}}, {"accept": None}])
    other_set = _rule(9, expr=[{"match": {"op": "==", "left": {}, "right": "@other"}}])
    runner = ScriptedRunner(rules=[odd, other_set])
    firewall = NftablesFirewall(runner=runner)
    firewall.start()
    assert not any("insert rule" in s or "delete rule" in s for s in runner.scripts())
    firewall.grant(Grant(SOURCE, "tcp", 22, 30))
    assert "handle 8 " in runner.scripts()[-1]


def test_firewall_nftables_grant_repairs_and_retries_once() -> None:
    runner = ScriptedRunner()
    firewall = NftablesFirewall(runner=runner)
    firewall.start()
    runner.rules = [_rule(4, comment=None, expr=[])]  # the chain was flushed
    runner.fail.append("replace rule")
    before = len(runner.calls)
    firewall.grant(Grant(SOURCE, "tcp", 22, 30))
    scripts = runner.scripts()[before:]
    assert scripts[0].startswith("flush chain") and scripts[-1].startswith("flush chain")
    assert scripts[1:3] == ["list tables", "list chain inet fw4 input"]
    assert "insert rule" in scripts[3]
    assert "replace rule inet fw4 input handle 51 " in scripts[-1]


def test_firewall_nftables_grant_gives_up_after_one_retry() -> None:
    runner = ScriptedRunner()
    firewall = NftablesFirewall(runner=runner)
    firewall.start()
    runner.fail += ["add element", "add element", "add element"]
    with pytest.raises(FirewallError) as caught:
        firewall.grant(Grant(SOURCE, "tcp", 22, 30))
    assert str(caught.value) == ("cannot open tcp/22 for 192.0.2.1: "
                                 "nft: injected failure (add element)")
    assert runner.fail == ["add element"]


def test_firewall_nftables_missing_table_message() -> None:
    runner = ScriptedRunner(tables=(("inet", "filter"), ("ip", "fw4")))
    firewall = NftablesFirewall(runner=runner)
    for attempt in (firewall.start, lambda: firewall.grant(Grant(SOURCE, "tcp", 22, 3))):
        with pytest.raises(FirewallError) as caught:
            attempt()
        assert str(caught.value) == "nftables table inet fw4 not found: is firewall4 running?"
    assert runner.scripts() == ["list tables", "list tables"]


def test_firewall_nftables_missing_chain_message() -> None:
    runner = ScriptedRunner()
    runner.fail.append("list chain")
    with pytest.raises(FirewallError, match=r"^nftables chain input not found in table "
                                            r"inet fw4: is firewall4 running\? \(nft: "):
        NftablesFirewall(runner=runner).start()


def test_firewall_nftables_other_table_and_family() -> None:
    runner = ScriptedRunner(tables=(("ip", "filter"),))
    firewall = NftablesFirewall(("ip", "filter"), "INPUT_x", "knock", runner=runner)
    firewall.grant(Grant(SOURCE, "udp", 1, 1))
    assert runner.scripts()[-1].splitlines()[:2] == [
        "flush chain ip filter knock_guard",
        "add element ip filter knock { 192.0.2.1 . udp . 1 timeout 1s }"]


@pytest.mark.parametrize(("table", "chain", "set_name"), [
    (("inet", "fw4; flush ruleset"), "input", "fwknopd_allow4"),
    (("inet", "fw4"), "input\nflush ruleset", "fwknopd_allow4"),
    (("inet", "fw4"), "input", 'x" ; flush ruleset ; "'),
    (("inet", "fw4"), "input", "a}"),
    (("inet", "fw4"), "input", "allow-4"),
    (("inet", "fw4"), "input", "9lives"),
    (("inet", "fw4"), "", "fwknopd_allow4"),
    (("inet", "fw4"), "input", "x" * 65),
    (("inet", "fw4"), "input", "fwknopd_allow4\n"),
    (("bridge", "fw4"), "input", "fwknopd_allow4"),
    (("inet ", "fw4"), "input", "fwknopd_allow4"),
    (("ip6", "fw4"), "input", "fwknopd_allow4"),
])
def test_firewall_nftables_refuses_hostile_names(table: tuple[str, str], chain: str,
                                                 set_name: str) -> None:
    runner = ScriptedRunner()
    with pytest.raises(FirewallError, match=r"^(invalid nftables|unsupported nftables family)"):
        NftablesFirewall(table, chain, set_name, runner=runner)
    assert runner.calls == []


def test_firewall_nftables_accepts_names_at_the_limit() -> None:
    NftablesFirewall(("inet", "_"), "x" * 64, "A_9" * 21, runner=ScriptedRunner())


@pytest.mark.parametrize("grant", [
    # Grant checks ranges, not types: these get through it and must stop here.
    Grant("192.0.2.1 . tcp . 22 } ; flush ruleset ; {", "tcp", 22, 3),  # type: ignore[arg-type]
    Grant(SOURCE, "tcp", True, 3),
    Grant(SOURCE, "tcp", 22.5, 3),  # type: ignore[arg-type]
    Grant(SOURCE, "tcp", 22, 3.5),  # type: ignore[arg-type]
])
def test_firewall_nftables_refuses_malformed_grants(grant: Grant) -> None:
    runner = ScriptedRunner()
    firewall = NftablesFirewall(runner=runner)
    firewall.start()
    before = len(runner.calls)
    with pytest.raises(FirewallError, match=r"^grant "):
        firewall.grant(grant)
    assert len(runner.calls) == before


def test_firewall_nftables_list_grants_reads_every_element_form() -> None:
    runner = ScriptedRunner()
    elements = [
        {"elem": {"val": {"concat": ["192.0.2.1", "tcp", 22]}, "timeout": 30, "expires": 27}},
        {"concat": ["192.0.2.2", "udp", 53]},  # added by hand, no timeout
        {"elem": {"val": {"concat": ["192.0.2.3", "tcp", "443"]}, "timeout": 5}},  # expiring
        {"elem": {"val": {"concat": ["192.0.2.4", "sctp", 9]}, "timeout": 9, "expires": 1}},
        {"concat": ["not-an-address", "tcp", 22]},
        {"concat": [3221225985, "tcp", 22]},
        {"concat": ["192.0.2.5", "tcp"]},
        "garbage",
    ]
    runner.set_doc = _doc(
        {"set": {"family": "inet", "table": "fw4", "name": "fwknopd_allow4", "elem": elements}},
        {"set": {"name": "someone_else", "elem": [{"concat": ["198.51.100.1", "tcp", 1]}]}})
    grants = NftablesFirewall(runner=runner).list_grants()
    assert runner.calls == [("list set inet fw4 fwknopd_allow4", True)]
    assert grants == [
        ActiveGrant(IPv4Address("192.0.2.1"), "tcp", 22, 27),
        ActiveGrant(IPv4Address("192.0.2.2"), "udp", 53, NO_EXPIRY),
        ActiveGrant(IPv4Address("192.0.2.3"), "tcp", 443, 0),
        ActiveGrant(IPv4Address("192.0.2.4"), "sctp", 9, 1),
    ]


def test_firewall_nftables_list_grants_of_an_empty_set() -> None:
    runner = ScriptedRunner()
    runner.set_doc = _doc({"set": {"name": "fwknopd_allow4", "type": []}})
    assert NftablesFirewall(runner=runner).list_grants() == []


def test_firewall_nftables_list_grants_rejects_non_json() -> None:
    runner = ScriptedRunner()
    runner.set_doc = "table inet fw4 {\n"
    with pytest.raises(FirewallError, match="not JSON"):
        NftablesFirewall(runner=runner).list_grants()


def test_firewall_nftables_list_and_flush_errors_name_the_set() -> None:
    runner = ScriptedRunner()
    runner.fail += ["list set", "flush set"]
    firewall = NftablesFirewall(runner=runner)
    with pytest.raises(FirewallError, match=r"^cannot read nftables set fwknopd_allow4 in "
                                            r"inet fw4: nft: injected"):
        firewall.list_grants()
    with pytest.raises(FirewallError, match=r"^cannot flush nftables set fwknopd_allow4 in "
                                            r"inet fw4: nft: injected"):
        firewall.flush()


def test_firewall_nftables_flush_is_one_command() -> None:
    runner = ScriptedRunner()
    NftablesFirewall(runner=runner).flush()
    assert runner.calls == [("flush set inet fw4 fwknopd_allow4\n", False)]


def test_firewall_nftables_close_leaves_an_injected_runner_open() -> None:
    runner = ScriptedRunner()
    firewall = NftablesFirewall(runner=runner)
    firewall.close()
    assert runner.closed == 0 and runner.calls == []
    assert firewall.runner is runner


def test_firewall_nftables_is_a_firewall() -> None:
    assert isinstance(NftablesFirewall(runner=ScriptedRunner()), Firewall)
