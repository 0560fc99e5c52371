# fwknop's lenient base64 (spa-protocol.md 1.2): known answers and properties.

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fwknopd_uci.spa import b64_decode_lenient, b64_encode_nopad
from fwknopd_uci.spa.b64 import is_canonical_nopad

# The checked examples of spa-protocol.md 1.2, plus the rules they illustrate.
KNOWN_ANSWERS = [
    ("dGVzdA", b"test"),
    ("QQ", b"A"),
    ("Q", b""),
    ("QUJD=ZZZ", b"ABC"),
    ("0sZirx/3/68oIAmyT4OubNm2r=", base64.b64decode("0sZirx/3/68oIAmyT4OubNm2")),
    ("", b""),
    ("dGVzdA==", b"test"),  # padding is accepted and ends the data
    ("QR", b"A"),  # non-zero unused low bits are not checked
    ("QUI", b"AB"),
    ("QUJDRA", b"ABCD"),
    ("dGVz\x00!!!", b"tes"),  # NUL ends the data like '=' (the rest is never read)
    ("=!!!", b""),
    ("wzNP62oPPgEc+kXDPQLHPOayQBuNbYUTPP+QrErNDmg=",
     base64.b64decode("wzNP62oPPgEc+kXDPQLHPOayQBuNbYUTPP+QrErNDmg=")),
]


@pytest.mark.parametrize(("text", "expected"), KNOWN_ANSWERS)
def test_spa_b64_decode_known_answers(text: str, expected: bytes) -> None:
    assert b64_decode_lenient(text) == expected
    assert b64_decode_lenient(text.encode("latin-1")) == expected


def test_spa_b64_decode_25_chars_gives_18_bytes() -> None:
    """The 1.2 example: 25 data chars = 6 groups (18 bytes) + 1 dangling char."""
    assert len(b64_decode_lenient("0sZirx/3/68oIAmyT4OubNm2r=")) == 18


@pytest.mark.parametrize("text", ["dGVz dA", "dGVz-A", "dGVz_A", "dGVz\nA", "é", "dGVzdA\r",
                                  "a.b", ":"])
def test_spa_b64_decode_rejects_bad_characters(text: str) -> None:
    with pytest.raises(ValueError):
        b64_decode_lenient(text)


def test_spa_b64_decode_ignores_garbage_after_equals() -> None:
    assert b64_decode_lenient("dGVzdA=== not base64 at all é") == b"test"


def test_spa_b64_encode_nopad_strips_padding() -> None:
    assert b64_encode_nopad(b"test") == "dGVzdA"
    assert b64_encode_nopad(b"A") == "QQ"
    assert b64_encode_nopad(b"ABC") == "QUJD"
    assert b64_encode_nopad(b"") == ""


@given(st.binary(max_size=300))
def test_spa_b64_round_trip(data: bytes) -> None:
    encoded = b64_encode_nopad(data)
    assert "=" not in encoded
    assert b64_decode_lenient(encoded) == data


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
               max_size=200))
def test_spa_b64_decode_length_rule(text: str) -> None:
    """Any alphabet string decodes; 4 chars -> 3 bytes, tail 2 -> 1, 3 -> 2, 1 -> 0."""
    whole, tail = divmod(len(text), 4)
    assert len(b64_decode_lenient(text)) == 3 * whole + (0, 0, 1, 2)[tail]


@given(st.text(max_size=100))
def test_spa_b64_decode_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        b64_decode_lenient(text)


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@pytest.mark.parametrize(("text", "canonical"), [
    ("", True), ("QQ", True), ("QR", False), ("QUI", True), ("QUJ", False), ("Q", False),
    ("dGVzdA", True), ("dGVzdB", False), ("QUJD", True), ("QUJDR", False),
])
def test_spa_b64_canonical_known_answers(text: str, canonical: bool) -> None:
    assert is_canonical_nopad(text) is canonical


@given(st.text(alphabet=ALPHABET, max_size=120))
def test_spa_b64_canonical_means_reencodes_identically(text: str) -> None:
    """Canonical exactly when decode-then-encode gives the same text back."""
    assert is_canonical_nopad(text) == (b64_encode_nopad(b64_decode_lenient(text)) == text)
