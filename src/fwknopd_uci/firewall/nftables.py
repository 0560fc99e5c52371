# The nftables backend, built for firewall4 (OpenWrt 22.03+: one table
# `inet fw4`, default-drop input, wan traffic ending in reject_from_wan).
#
# Why inside fw4's table: in nftables an accept only ends the current base
# chain, and a drop or reject in any other base chain still kills the packet.
# The stock fwknopd adds its accept rules to iptables-nft's own tables, so
# fw4's `input` chain rejects the knocked port anyway (reference openwrt.md
# section 8). We therefore put our accept in fw4's own chain.
#
# Strategy (the objects, all inside the configured table):
# - set   fwknopd_allow4 { type ipv4_addr . inet_proto . inet_service;
#                          flags timeout; }
#   One element per grant (source . proto . port) with its own timeout; the
#   kernel deletes it when the timeout runs out. Nothing to clean up, and a
#   crashed daemon leaves nothing open longer than granted.
# - rule  ip saddr . meta l4proto . th dport @fwknopd_allow4 accept
#         comment "fwknopd"
#   inserted once at the top of the chain (`input`). Found again by its
#   expression (or its comment plus our set), never added twice.
# - chain fwknopd_allow4_guard, empty and never jumped to. It exists only to
#   prove the table is still the one we set up (see grant below).
#
# grant() is ONE nft transaction, so the normal knock-to-open path costs one
# call and no listing (measured in a namespace: about 0.3 ms through
# libnftables, 15-20 ms through the nft binary, against a 5 ms target):
#     flush chain   <guard>                          # fails if table was rebuilt
#     add element   <set> { src . proto . port timeout Ns }   # no-op if present
#     delete element <set> { src . proto . port }
#     add element   <set> { src . proto . port timeout Ns }   # exact new timeout
#     replace rule  <chain> handle H <our rule>      # fails if our rule is gone
# The add/delete/add triple makes a repeated knock reset the timeout instead
# of being ignored. The replace by handle rewrites our rule identically; its
# only job is to fail when the rule has gone (`fw4 reload` flushes the
# table's rules but keeps sets, so the elements alone would still go in and
# the port would stay shut). Handles are never reused inside one table, but
# a rebuilt table (`fw4 restart`) starts counting again, so H could then name
# one of fw4's own rules; the guard chain, which only we create, is missing
# from any rebuilt table and makes the transaction fail before that. On any
# failure grant() runs start() (which re-creates what is missing and learns
# the new handle) and retries once. The kernel keeps a rule's handle across
# a replace (checked on 6.x); should one ever change it, the next grant
# fails once, start() finds the rule by its expression, and all is well.
# Every add carries the timeout, so no element is ever timeout-less, not
# even inside the transaction.
#
# Invariants:
# - Nothing from a packet reaches an nft script unchecked: addresses are
#   IPv4Address objects, proto is "tcp" or "udp", port and timeout are ints
#   in range (checked here again, not only in Grant), and table, chain and
#   set names match NAME_PATTERN with the family from FAMILIES.
# - close() leaves the elements in place; they expire by themselves.
# - Established connections outlive their grant through fw4's conntrack rule
#   (`ct state vmap { established : accept, ... }`), as with stock fwknopd.
# - Not thread-safe: one caller (the daemon's loop) at a time.
# IPv6 is out of scope for now: Grant carries an IPv4Address only.

from __future__ import annotations

import json
import logging
import re
from ipaddress import AddressValueError, IPv4Address
from typing import Any

from fwknopd_uci.firewall.base import NO_EXPIRY, ActiveGrant, FirewallError
from fwknopd_uci.firewall.runners import (
    LibNftablesRunner,
    NftCommandRunner,
    NftRunner,
    default_runner,
)
from fwknopd_uci.model import Grant

__all__ = ["FAMILIES", "GUARD_SUFFIX", "NAME_PATTERN", "RULE_COMMENT", "NftablesFirewall"]

log = logging.getLogger(__name__)

# nft identifiers we accept from the config. Stricter than nft itself (no
# dots, dashes or slashes) so a name can never end a token early or open a
# quoted string; 64 characters is far below the kernel's 256.
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# Families whose tables can match `ip saddr`: the set holds IPv4 addresses.
FAMILIES = frozenset({"inet", "ip"})
RULE_COMMENT = "fwknopd"
GUARD_SUFFIX = "_guard"
_PROTOS = frozenset({"tcp", "udp"})


class NftablesFirewall:
    """Grants as timed elements of one nftables set inside firewall4's table.

    Args:
        table: (family, name) of the table to work in, ``("inet", "fw4")``.
        chain: the base chain our accept rule goes at the top of.
        set_name: name of our set (the guard chain is named after it).
        runner: how to talk to nftables; by default libnftables if it
            loads, else the nft binary (see ``default_runner``).

    Raises:
        FirewallError: a name or the family is not acceptable.
    """

    def __init__(self, table: tuple[str, str] = ("inet", "fw4"), chain: str = "input",
                 set_name: str = "fwknopd_allow4", *, runner: NftRunner | None = None) -> None:
        family, table_name = table
        if family not in FAMILIES:
            raise FirewallError(
                f"unsupported nftables family {family!r}: use one of {sorted(FAMILIES)}")
        for kind, name in (("table", table_name), ("chain", chain), ("set", set_name)):
            if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
                raise FirewallError(f"invalid nftables {kind} name {name!r}: must match "
                                    f"^{NAME_PATTERN.pattern}$")
        self._family = family
        self._table = table_name
        self._chain = chain
        self._set = set_name
        self._guard = set_name + GUARD_SUFFIX
        self._owned: LibNftablesRunner | NftCommandRunner | None = None
        if runner is None:
            self._owned = default_runner()
            runner = self._owned
        self._runner: NftRunner = runner
        # Handle of our rule in the chain; None until start() has found it.
        self._rule_handle: int | None = None

    @property
    def runner(self) -> NftRunner:
        """The runner in use (for logs: which path the grants take)."""
        return self._runner

    def start(self) -> None:
        """Check the table and chain exist; create our set, guard and rule if missing.

        Idempotent: calling it again changes nothing when all is in place.

        Raises:
            FirewallError: the table or chain does not exist, or our objects
                cannot be created (e.g. a set of that name with another type).
        """
        where = f"{self._family} {self._table}"
        tables = _objects(self._runner.run("list tables", json_output=True), "table")
        if not any(t.get("family") == self._family and t.get("name") == self._table
                   for t in tables):
            raise FirewallError(f"nftables table {where} not found: is firewall4 running?")
        handles = self._find_rules()
        lines = [
            (f"add set {where} {self._set} "
             "{ type ipv4_addr . inet_proto . inet_service; flags timeout; }"),
            f"add chain {where} {self._guard}",
        ]
        if not handles:
            # Plain insert puts the rule at position 0, before fw4's own rules.
            lines.append(f"insert rule {where} {self._chain} {self._rule_text()}")
        # Someone (or a racing second instance) added it twice: keep one.
        lines.extend(f"delete rule {where} {self._chain} handle {h}" for h in handles[1:])
        try:
            self._runner.run("\n".join(lines) + "\n")
        except FirewallError as exc:
            raise FirewallError(
                f"cannot set up nftables set {self._set} in {where}: {exc}") from exc
        if not handles:
            handles = self._find_rules()
            if not handles:
                raise FirewallError(f"our rule vanished from chain {self._chain} in {where}")
            log.info("firewall.started set=%s rule=%s/%s handle=%d",
                     self._set, where, self._chain, handles[0])
        self._rule_handle = handles[0]

    def grant(self, grant: Grant) -> None:
        """Open the grant's proto/port for its source for exactly its timeout.

        One nft transaction; if it fails (our objects were removed behind our
        back), start() repairs them and the transaction is retried once.

        Raises:
            FirewallError: the grant is malformed, or it failed twice.
        """
        element, timeout = _element(grant)
        if self._rule_handle is None:
            self.start()
        try:
            self._runner.run(self._grant_script(element, timeout))
            return
        except FirewallError as exc:
            log.warning("firewall.repair grant of %s failed (%s); re-creating set and rule",
                        element, exc)
        self.start()
        try:
            self._runner.run(self._grant_script(element, timeout))
        except FirewallError as exc:
            raise FirewallError(f"cannot open {grant.proto}/{grant.port} for "
                                f"{grant.source}: {exc}") from exc

    def list_grants(self) -> list[ActiveGrant]:
        """Read our set and report each element with its remaining seconds.

        Raises:
            FirewallError: the set cannot be read (e.g. it does not exist).
        """
        where = f"{self._family} {self._table}"
        try:
            out = self._runner.run(f"list set {where} {self._set}", json_output=True)
        except FirewallError as exc:
            raise FirewallError(f"cannot read nftables set {self._set} in {where}: "
                                f"{exc}") from exc
        grants: list[ActiveGrant] = []
        for nft_set in _objects(out, "set"):
            if nft_set.get("name") != self._set:
                continue
            for raw in nft_set.get("elem", []):
                active = _active_grant(raw)
                if active is None:
                    log.warning("firewall.list skipped an element we cannot read: %r", raw)
                else:
                    grants.append(active)
        return grants

    def flush(self) -> None:
        """Remove every element (grant) from our set.

        Raises:
            FirewallError: the set cannot be flushed (e.g. it does not exist).
        """
        where = f"{self._family} {self._table}"
        try:
            self._runner.run(f"flush set {where} {self._set}\n")
        except FirewallError as exc:
            raise FirewallError(f"cannot flush nftables set {self._set} in {where}: "
                                f"{exc}") from exc

    def close(self) -> None:
        """Close the runner if we made it; grants stay and expire on their own."""
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def _rule_text(self) -> str:
        return (f"ip saddr . meta l4proto . th dport @{self._set} accept "
                f'comment "{RULE_COMMENT}"')

    def _grant_script(self, element: str, timeout: int) -> str:
        where = f"{self._family} {self._table}"
        return (
            f"flush chain {where} {self._guard}\n"
            f"add element {where} {self._set} {{ {element} timeout {timeout}s }}\n"
            f"delete element {where} {self._set} {{ {element} }}\n"
            f"add element {where} {self._set} {{ {element} timeout {timeout}s }}\n"
            f"replace rule {where} {self._chain} handle {self._rule_handle} "
            f"{self._rule_text()}\n"
        )

    def _find_rules(self) -> list[int]:
        """Handles of our rules in the chain, in chain order."""
        where = f"{self._family} {self._table}"
        try:
            out = self._runner.run(f"list chain {where} {self._chain}", json_output=True)
        except FirewallError as exc:
            raise FirewallError(f"nftables chain {self._chain} not found in table {where}: "
                                f"is firewall4 running? ({exc})") from exc
        handles: list[int] = []
        for rule in _objects(out, "rule"):
            if rule.get("chain") == self._chain and self._is_ours(rule):
                handle = rule.get("handle")
                if isinstance(handle, int):
                    handles.append(handle)
        return handles

    def _is_ours(self, rule: dict[str, Any]) -> bool:
        expr = rule.get("expr")
        if expr == self._expected_expr():
            return True
        # Same comment and our set: ours, even if a newer nft spells the
        # expression differently in JSON.
        return rule.get("comment") == RULE_COMMENT and isinstance(expr, list) and any(
            isinstance(e, dict) and isinstance(e.get("match"), dict)
            and e["match"].get("right") == f"@{self._set}" for e in expr)

    def _expected_expr(self) -> list[dict[str, Any]]:
        # `nft -j` rendering of the rule built by _rule_text().
        key = [{"payload": {"protocol": "ip", "field": "saddr"}},
               {"meta": {"key": "l4proto"}},
               {"payload": {"protocol": "th", "field": "dport"}}]
        return [{"match": {"op": "==", "left": {"concat": key}, "right": f"@{self._set}"}},
                {"accept": None}]


def _element(grant: Grant) -> tuple[str, int]:
    """The nft element text and timeout of a grant, checked field by field.

    Grant validates ranges but not types, so a caller could still pass a
    string address; re-check everything that goes into a script here.
    """
    source, proto, port, timeout = grant.source, grant.proto, grant.port, grant.timeout
    if not isinstance(source, IPv4Address):
        raise FirewallError(f"grant source must be an IPv4Address, not {source!r}")
    if proto not in _PROTOS:
        raise FirewallError(f"grant protocol must be tcp or udp, not {proto!r}")
    if type(port) is not int or not 0 <= port <= 65535:
        raise FirewallError(f"grant port out of range: {port!r}")
    if type(timeout) is not int or timeout < 1:
        raise FirewallError(f"grant timeout must be a positive int: {timeout!r}")
    return f"{source} . {proto} . {port}", timeout


def _objects(output: str, kind: str) -> list[dict[str, Any]]:
    """All objects of one kind ("table", "rule", "set") in nft's JSON output.

    nft prints one JSON document per listing command, one per line.
    """
    found: list[dict[str, Any]] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FirewallError(f"nft printed something that is not JSON: {exc}") from exc
        items = doc.get("nftables") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise FirewallError("nft printed JSON without an 'nftables' list")
        for item in items:
            if isinstance(item, dict) and isinstance(item.get(kind), dict):
                found.append(item[kind])
    return found


def _active_grant(raw: object) -> ActiveGrant | None:
    """One set element from `nft -j list set`, or None if it is not ours to read.

    An element with a timeout looks like
    {"elem": {"val": {"concat": [...]}, "timeout": 3, "expires": 2}};
    one without is the bare {"concat": [...]}. nft omits "expires" once it
    reaches 0, so an element with a timeout but no "expires" is about to go.
    """
    if not isinstance(raw, dict):
        return None
    if isinstance(raw.get("elem"), dict):
        inner = raw["elem"]
        value = inner.get("val")
        expires = inner.get("expires", 0 if "timeout" in inner else NO_EXPIRY)
    else:
        value, expires = raw, NO_EXPIRY
    parts = value.get("concat") if isinstance(value, dict) else None
    if not isinstance(parts, list) or len(parts) != 3 or not isinstance(expires, int):
        return None
    address, proto, port = parts
    if not isinstance(address, str):
        return None
    try:
        source = IPv4Address(address)
    except (AddressValueError, ValueError):
        return None
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or not isinstance(proto, (str, int)):
        return None
    return ActiveGrant(source=source, proto=str(proto), port=port, expires_in=expires)
