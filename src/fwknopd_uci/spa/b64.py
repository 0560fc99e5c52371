# fwknop's base64 dialect (spa-protocol.md 1.2).
#
# Purpose: every base64 value in an SPA packet (fields, ciphertext, digest,
# HMAC) is standard-alphabet base64 with the '=' padding cut off, and the
# reference decoder (lib/base64.c) is lenient in ways Python's strict
# decoder is not. A compatible server must decode exactly like it.
#
# Strategy: validate the characters ourselves (bytes.translate, C speed),
# then hand whole 4-character groups plus a re-padded tail to binascii,
# which in its default non-strict mode also ignores non-zero unused bits.
#
# Invariants: b64_decode_lenient raises only ValueError, and only for a
# character outside "A-Z a-z 0-9 + /" before the first '=' or NUL.

from __future__ import annotations

import binascii
from typing import Final, TypeVar

__all__ = ["B64_ALPHABET", "b64_decode_lenient", "b64_encode_nopad", "is_canonical_nopad"]

#: The standard base64 alphabet as bytes (no '=' padding character).
B64_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# Re-padding for a tail of 0..3 characters: a group of 2 chars carries 1
# byte, 3 chars carry 2 bytes, and a single dangling char carries nothing
# (1.2), so it is dropped rather than padded.
_TAIL_PAD: Final = (b"", b"", b"==", b"=")
_T = TypeVar("_T", str, bytes)
# Value of each alphabet character, for the canonical-tail check.
_VALUE: Final = {char: index for index, char in enumerate(B64_ALPHABET.decode("ascii"))}


def _cut_at_stop(data: _T, *stops: _T) -> _T:
    for stop in stops:
        cut = data.find(stop)
        if cut >= 0:
            data = data[:cut]
    return data


def b64_decode_lenient(data: str | bytes) -> bytes:
    """Decode base64 the way fwknop's ``b64_decode`` does (spa-protocol.md 1.2).

    * Decoding stops at the first ``=`` or NUL; anything after it is ignored.
    * Every character before that must be in ``A-Z a-z 0-9 + /``.
    * No padding or length rule: 2 trailing chars give 1 byte, 3 give 2, a
      single dangling char gives nothing; unused low bits are not checked.

    Examples: ``dGVzdA`` -> ``b"test"``, ``QQ`` -> ``b"A"``, ``Q`` -> ``b""``,
    ``QUJD=ZZZ`` -> ``b"ABC"``.

    Args:
        data: the encoded text (a str must be ASCII to be valid).

    Returns:
        The decoded bytes (possibly empty).

    Raises:
        ValueError: a character outside the alphabet before the first
            ``=``/NUL (including any non-ASCII character).
    """
    # 1.2: the decoder stops at the first '=' or NUL; what follows is never
    # read, so it is cut off before any character check.
    if isinstance(data, str):
        text = _cut_at_stop(data, "=", "\x00")
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError as exc:
            raise ValueError("non-ASCII character in base64 data") from exc
    else:
        raw = _cut_at_stop(bytes(data), b"=", b"\x00")
    if raw.translate(None, B64_ALPHABET):
        raise ValueError("invalid character in base64 data")
    tail = len(raw) % 4
    if tail == 1:
        raw = raw[:-1]
    # binascii.Error is a ValueError subclass; it cannot occur here because
    # the alphabet was checked and the padding is regular.
    return binascii.a2b_base64(raw + _TAIL_PAD[tail])


def b64_encode_nopad(data: bytes) -> str:
    """Standard base64 of ``data`` with the ``=`` padding removed (fwknop's
    ``strip_b64_eq``, spa-protocol.md 1.2)."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").decode("ascii")


def is_canonical_nopad(text: str) -> bool:
    """True if ``text`` (alphabet characters only) is exactly what
    ``b64_encode_nopad`` produces for some bytes.

    The lenient decoder drops a dangling last character (length = 1 mod 4)
    and ignores the unused low bits of the last character of a 2- or
    3-character tail, so several strings decode to the same bytes; only one
    of them is canonical.
    """
    tail = len(text) % 4
    if tail == 1:
        return False
    if tail == 0:
        return True
    unused_bits = 4 if tail == 2 else 2
    return _VALUE.get(text[-1], 1) & ((1 << unused_bits) - 1) == 0
