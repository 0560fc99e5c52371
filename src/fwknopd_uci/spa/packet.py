# From captured payload to authenticated SpaMessage (spa-protocol.md 2.8, 3.4, 5, 6.2).
#
# Purpose: the server side of the wire format. prescreen() and
# unwrap_http() are fwknopd's preprocess_spa_data(); open_packet() is
# libfko's fko_new_with_data() + HMAC check + decrypt + decode for one
# stanza's keys; replay_digest() is the digest-cache key.
#
# Strategy: cheapest checks first. prescreen() runs on every datagram, so it
# is a few length/prefix tests and one bytes.translate() over the payload.
# open_packet() repeats the character checks on its own input (cheap) so it
# is safe to call on any string, verifies the HMAC before touching the
# cipher (encrypt-then-MAC, 3.4), then decrypts and decodes.
#
# Invariants: every public function raises only SpaRefused, whatever the
# input; codes and messages are those of errors.py. Nothing here logs,
# reads a clock, or keeps state between calls.

from __future__ import annotations

import re
from typing import Final

from .b64 import B64_ALPHABET, b64_decode_lenient, is_canonical_nopad
from .crypto import (
    MAX_HMAC_KEY_LEN,
    MAX_KEY_LEN,
    SALTED_MAGIC,
    StanzaKeys,
    decrypt_blob,
    digest_b64,
)
from .errors import SpaRefused
from .message import SpaMessage, decode_plaintext

__all__ = [
    "GPG_MIN_LEN",
    "MAX_SPA_PACKET_LEN",
    "MIN_SPA_DATA_SIZE",
    "SALTED_PREFIX",
    "extract_wire",
    "is_gpg_length",
    "open_packet",
    "prescreen",
    "replay_digest",
    "unwrap_http",
]

#: Shortest payload fwknopd looks at (5.3, MIN_SPA_DATA_SIZE).
MIN_SPA_DATA_SIZE: Final = 140
#: Longest payload fwknopd looks at (5.3, MAX_SPA_PACKET_LEN, inclusive).
MAX_SPA_PACKET_LEN: Final = 1500
#: Data this long or longer is taken for GPG by fwknopd (2.10, MIN_GNUPG_MSG_SIZE).
GPG_MIN_LEN: Final = 400
#: base64 of "Salted__"; stripped by the client, re-added by the server (2.6).
SALTED_PREFIX: Final = "U2FsdGVkX1"

_SALTED_PREFIX_B: Final = SALTED_PREFIX.encode("ascii")
_GPG_PREFIX_B: Final = b"hQ"
# 2.8 / 3.4: the decoded-message size window of libfko (36 <= len < 1500).
_MIN_ENCODED: Final = 36
_MAX_ENCODED: Final = 1500
# str.translate table deleting the base64 alphabet (open_packet's charset check).
_DELETE_ALPHABET: Final = dict.fromkeys(B64_ALPHABET)
# 5.4: the SPA data runs from "GET /" to the first whitespace byte.
_HTTP_DATA_RE: Final = re.compile(rb"[^ \t\n\v\f\r]*")
_HTTP_UNSAFE: Final = bytes.maketrans(b"-_", b"+/")
_XFF_HEADER: Final = b"x-forwarded-for:"

#: What the capture layer may hand over (copied once with bytes()).
Payload = bytes | bytearray | memoryview


def _refuse_charset(leftover: str) -> None:
    # ``leftover`` is the input with every base64-alphabet character removed.
    # 5.3 step 5: only alnum, '+', '/' (and '=') may appear. '=' is refused
    # too, by a project decision stricter than fwknopd (6.2, 14.5): the
    # lenient decoder ignores everything after '=', so appending "=..." to a
    # captured packet would give it a fresh replay digest with the same
    # content. No genuine client sends '=' (checked against every vector).
    if leftover:
        if not leftover.strip("="):
            raise SpaRefused("PRESCREEN_EQUALS_SIGN")
        raise SpaRefused("PRESCREEN_NOT_SPA_DATA")


def prescreen(payload: Payload) -> str:
    """fwknopd's cheap pre-screen of a payload (spa-protocol.md 5.3 steps 1-3, 5).

    Call it on what ``unwrap_http`` returned when SPA over HTTP is enabled,
    else on the raw transport payload.

    Args:
        payload: the UDP/TCP/ICMP payload (or the unwrapped HTTP data).

    Returns:
        The payload as an ASCII str, ready for ``open_packet``.

    Raises:
        SpaRefused: ``PRESCREEN_BAD_DATA`` (length outside 140..1500, starts
            with ``U2FsdGVkX1``, or longer than 400 and starts with ``hQ``),
            ``PRESCREEN_NOT_SPA_DATA`` (a byte outside the base64 alphabet),
            ``PRESCREEN_EQUALS_SIGN`` (an ``=``; stricter than the reference).
    """
    data = bytes(payload)
    size = len(data)
    if not MIN_SPA_DATA_SIZE <= size <= MAX_SPA_PACKET_LEN:
        raise SpaRefused("PRESCREEN_BAD_DATA")  # step 1
    if data.startswith(_SALTED_PREFIX_B):
        raise SpaRefused("PRESCREEN_BAD_DATA")  # step 2: anti-replay, 2.6
    if size > GPG_MIN_LEN and data.startswith(_GPG_PREFIX_B):
        raise SpaRefused("PRESCREEN_BAD_DATA")  # step 3
    leftover = data.translate(None, B64_ALPHABET)
    if leftover:
        _refuse_charset(leftover.decode("latin-1"))
    return data.decode("ascii")


def unwrap_http(payload: Payload, allow_any_user_agent: bool) -> tuple[bytes, str | None]:
    """Extract SPA data carried in an HTTP GET (spa-protocol.md 5.4).

    Only a payload starting with ``GET /`` (case-insensitive) is HTTP; any
    other payload is returned unchanged with ``None``. Call this before
    ``prescreen`` when ``ENABLE_SPA_OVER_HTTP`` is on.

    Args:
        payload: the raw TCP/UDP payload.
        allow_any_user_agent: ``ALLOW_ANY_USER_AGENT``; when False the text
            ``User-Agent: Fwknop`` (case-sensitive) must appear.

    Returns:
        ``(spa_data, x_forwarded_for)``: the SPA data with ``-`` -> ``+`` and
        ``_`` -> ``/`` undone, and the raw ``X-Forwarded-For`` header value
        (stripped; the caller validates it as an IPv4 address) or ``None``.

    Raises:
        SpaRefused: ``HTTP_BAD_DATA`` for an HTTP payload over 1500 bytes or
            without the Fwknop User-Agent.
    """
    data = bytes(payload)
    if data[:5].lower() != b"get /":
        return data, None
    # 5.3 step 1 applies to the raw payload before unwrapping.
    if len(data) > MAX_SPA_PACKET_LEN:
        raise SpaRefused("HTTP_BAD_DATA")
    if not allow_any_user_agent and b"User-Agent: Fwknop" not in data:
        raise SpaRefused("HTTP_BAD_DATA")
    match = _HTTP_DATA_RE.match(data, 5)
    spa = match.group(0) if match else b""
    forwarded = None
    start = data.lower().find(_XFF_HEADER)
    if start >= 0:
        value = data[start + len(_XFF_HEADER):]
        value = value.split(b"\r", 1)[0].split(b"\n", 1)[0]
        forwarded = value.strip(b" \t").decode("latin-1")
    return spa.translate(_HTTP_UNSAFE), forwarded


def extract_wire(payload: Payload, *, spa_over_http: bool = False,
                 allow_any_user_agent: bool = False) -> tuple[str, str | None]:
    """``unwrap_http`` (when enabled) followed by ``prescreen``, in fwknopd's order.

    Returns:
        ``(wire, x_forwarded_for)``.

    Raises:
        SpaRefused: as ``unwrap_http`` and ``prescreen``.
    """
    if spa_over_http:
        data, forwarded = unwrap_http(payload, allow_any_user_agent)
        return prescreen(data), forwarded
    return prescreen(payload), None


def is_gpg_length(wire: str) -> bool:
    """True when fwknopd would take ``wire`` for GPG data (len >= 400, 2.10/2.11).

    The pipeline tries such packets only in ``ENABLE_CMD_EXEC`` stanzas
    ("No stanza encryption mode match for encryption type: 2." otherwise).
    """
    return len(wire) >= GPG_MIN_LEN


def replay_digest(wire: str) -> str:
    """The digest-cache key of a packet: b64-nopad SHA256 of the wire string (6.2).

    ``wire`` is the payload as received (after HTTP unwrapping), HMAC
    included, prefix not added.
    """
    return digest_b64("sha256", wire.encode("utf-8", "surrogatepass"))


def _verify_hmac(wire: str, keys: StanzaKeys) -> str:
    # 3.4: split by the stanza's HMAC length, MAC "U2FsdGVkX1" + ciphertext
    # (the prefix *is* authenticated although never sent, 3.2), compare the
    # b64 text in constant time. Returns the ciphertext part.
    hmac_key = keys.hmac_key
    assert hmac_key is not None
    if len(hmac_key) > MAX_HMAC_KEY_LEN:
        raise SpaRefused("INVALID_HMAC_KEY_LEN")
    mac_len = keys.hmac_b64_len
    if len(wire) - mac_len < _MIN_ENCODED:
        raise SpaRefused("HMAC_ENCMSGLEN_VALIDFAIL")
    ciphertext, received = wire[:-mac_len], wire[-mac_len:]
    computed = keys.hmac_b64((SALTED_PREFIX + ciphertext).encode("ascii"))
    # Not at import (RSS budget, crypto.py's header); hmac_b64 loaded it.
    import hmac

    if not hmac.compare_digest(computed, received):
        raise SpaRefused("HMAC_COMPAREFAIL")
    return ciphertext


def open_packet(wire: str, keys: StanzaKeys) -> SpaMessage:
    """Authenticate, decrypt and decode one SPA packet with one stanza's keys.

    Follows libfko (spa-protocol.md 3.4, 2.8, 2.11, 1.12): HMAC first when
    the stanza has an HMAC key, then the in-library GPG-length check, AES
    decryption with the stanza's mode, lenient padding removal, the
    "16 digits and a colon" wrong-key test, and the plaintext decode.

    Args:
        wire: the packet as returned by ``prescreen``.
        keys: the stanza's keys.

    Returns:
        The decoded message. Packet age, source, ports and the replay cache
        are the caller's business.

    Raises:
        SpaRefused: for any reason; e.g. ``HMAC_COMPAREFAIL`` (wrong HMAC key
            or type, or no HMAC sent), ``DECRYPTION_FAILURE`` (wrong key or
            mode), ``DIGEST_VERIFICATION_FAILED``, ``DECODE_*`` field errors.
    """
    if not _MIN_ENCODED <= len(wire) < _MAX_ENCODED:
        raise SpaRefused("FUNCS_NEW_MSGLEN_VALIDFAIL")
    # Defence in depth: the same character and prefix rules as prescreen,
    # so open_packet is safe on any string (non-ASCII included).
    _refuse_charset(wire.translate(_DELETE_ALPHABET))
    if wire.startswith(SALTED_PREFIX):
        raise SpaRefused("PRESCREEN_BAD_DATA")

    if keys.hmac_key is not None:
        ciphertext = SALTED_PREFIX + _verify_hmac(wire, keys)
        checked = ciphertext
    else:
        ciphertext = SALTED_PREFIX + wire
        checked = wire  # 2.11: without HMAC libfko measures the string as received
    if len(checked) >= GPG_MIN_LEN:
        raise SpaRefused("ENCRYPT_TYPE_UNKNOWN")  # 2.11
    if not is_canonical_nopad(ciphertext):
        # Project decision, stricter than libfko and for the same reason as
        # the '=' rule (6.2): the lenient decoder ignores a dangling last
        # character and the unused low bits of the last one, so a captured
        # packet for a stanza *without* HMAC could be re-sent with those bits
        # changed: same plaintext, new replay digest. (With HMAC the MAC
        # covers the text.) Every genuine client emits canonical base64.
        raise SpaRefused("NONCANONICAL_BASE64")
    if keys.passphrase_len > MAX_KEY_LEN:
        raise SpaRefused("INVALID_KEY_LEN")  # 2.3: refused per packet, not at load

    raw = b64_decode_lenient(ciphertext)  # cannot fail: the charset was checked
    if len(raw) % 16:
        raise SpaRefused("ENCRYPT_CIPHERLEN_VALIDFAIL")
    if not raw.startswith(SALTED_MAGIC):
        # Project decision, stricter than libfko (which never checks bytes
        # 0..7, 2.2), for the same replay reason as above: the first wire
        # character carries 4 bits of the magic's final '_', so without this
        # check 16 spellings of one non-HMAC packet would all decode. Every
        # genuine packet starts with one of "8 9 + /" (2.6), i.e. intact magic.
        raise SpaRefused("BAD_SALTED_MAGIC")
    plaintext = decrypt_blob(raw, keys)
    if not plaintext:
        raise SpaRefused("DECRYPTION_SIZE")
    if not _MIN_ENCODED <= len(plaintext) < _MAX_ENCODED:
        raise SpaRefused("DECODE_MSGLEN_VALIDFAIL")
    # 2.8: the practical wrong-key detector -- 16 digits, then ':'.
    if plaintext[16:17] != b":" or not plaintext[:16].isdigit():
        raise SpaRefused("DECRYPTION_FAILURE")
    return decode_plaintext(plaintext)
