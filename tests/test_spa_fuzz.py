# Property tests: whatever arrives, the SPA core answers with a SpaMessage or
# a SpaRefused -- never another exception (the brief's boundary rule).

from __future__ import annotations

import contextlib
import os
import string

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from fwknopd_uci.spa import (
    SpaRefused,
    StanzaKeys,
    build_packet,
    decode_plaintext,
    extract_wire,
    open_packet,
    prescreen,
    replay_digest,
    unwrap_http,
)

B64 = string.ascii_letters + string.digits + "+/"
KEY, HMAC_KEY = b"fuzzing key 0123456789abcdefghij", b"fuzzing hmac key"
STANZAS = [
    StanzaKeys(KEY, HMAC_KEY),
    StanzaKeys(KEY, None),
    StanzaKeys(b"fwknoptest", None, mode="legacy"),
    StanzaKeys(KEY, HMAC_KEY, "md5", "ctr"),
    StanzaKeys(KEY, HMAC_KEY, "sha3_512", "cfb"),
]
TS = 1_700_000_000
VALID = {keys: build_packet("10.0.0.2,tcp/22", keys, timestamp=TS) for keys in STANZAS}
# SPA_FUZZ_EXAMPLES raises the example count for a long local hunt (the
# default keeps the suite fast).
FAST = settings(max_examples=int(os.environ.get("SPA_FUZZ_EXAMPLES", "300")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _open_all(wire: str) -> None:
    for keys in STANZAS:
        with contextlib.suppress(SpaRefused):
            open_packet(wire, keys)


@FAST
@given(st.binary(max_size=1600))
@example(b"")
@example(b"U2FsdGVkX1" + b"A" * 200)
@example(b"GET /" + b"A" * 200)
def test_spa_fuzz_arbitrary_bytes_only_refused(payload: bytes) -> None:
    for http in (False, True):
        for any_agent in (False, True):
            try:
                wire, _ = extract_wire(payload, spa_over_http=http,
                                       allow_any_user_agent=any_agent)
            except SpaRefused:
                continue
            assert wire.isascii()
            replay_digest(wire)
            _open_all(wire)
    with contextlib.suppress(SpaRefused):
        unwrap_http(payload, allow_any_user_agent=False)


@FAST
@given(st.text(max_size=1600))
def test_spa_fuzz_arbitrary_text_only_refused(wire: str) -> None:
    replay_digest(wire)
    _open_all(wire)


@FAST
@given(st.text(alphabet=B64, min_size=36, max_size=1499))
def test_spa_fuzz_base64_looking_strings_only_refused(wire: str) -> None:
    _open_all(wire)
    with contextlib.suppress(SpaRefused):
        prescreen(wire.encode())


@FAST
@given(st.binary(min_size=0, max_size=1600))
def test_spa_fuzz_plaintext_decoder_only_refused(plaintext: bytes) -> None:
    with contextlib.suppress(SpaRefused):
        decode_plaintext(plaintext)


_MUTATION = st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 500), st.sampled_from(B64)),
    st.tuples(st.just("insert"), st.integers(0, 500), st.sampled_from(B64 + "= :-_\0")),
    st.tuples(st.just("delete"), st.integers(0, 500), st.just("")),
    st.tuples(st.just("truncate"), st.integers(0, 500), st.just("")),
    st.tuples(st.just("append"), st.integers(0, 0), st.text(alphabet=B64 + "=", max_size=8)),
)


def _mutate(wire: str, mutation: tuple[str, int, str]) -> str:
    kind, index, text = mutation
    if not wire:
        return text
    index %= len(wire)
    if kind == "replace":
        return wire[:index] + text + wire[index + 1:]
    if kind == "insert":
        return wire[:index] + text + wire[index:]
    if kind == "delete":
        return wire[:index] + wire[index + 1:]
    if kind == "truncate":
        return wire[:index]
    return wire + text


@FAST
@given(st.sampled_from(STANZAS), st.lists(_MUTATION, min_size=1, max_size=4))
def test_spa_fuzz_mutated_packets_refused(keys: StanzaKeys,
                                          mutations: list[tuple[str, int, str]]) -> None:
    """Any change to a valid packet is refused, HMAC or not (the non-HMAC
    case relies on the digest, the 16-digit check and the canonical-base64
    rule); an unchanged packet decodes."""
    original = VALID[keys]
    wire = original
    for mutation in mutations:
        wire = _mutate(wire, mutation)
    if wire == original:
        assert open_packet(wire, keys).message == "10.0.0.2,tcp/22"
        return
    try:
        open_packet(wire, keys)
    except SpaRefused:
        return
    raise AssertionError(f"mutated packet accepted: {mutations!r}")


@FAST
@given(st.integers(0, 2**40), st.sampled_from(STANZAS),
       st.text(alphabet=string.ascii_letters + string.digits + "-_. ", min_size=1, max_size=40))
def test_spa_fuzz_build_open_round_trip(timestamp: int, keys: StanzaKeys, user: str) -> None:
    assume(timestamp < 2**31)
    wire = build_packet("192.168.1.1,udp/53", keys, timestamp=timestamp, username=user)
    msg = open_packet(prescreen(wire.encode()), keys)
    assert (msg.timestamp, msg.username) == (timestamp, user)
