# The decrypted SPA plaintext: decoding and field validation (spa-protocol.md 1).
#
# Purpose: turn the decrypted text "rand:user:ts:ver:type:msg[:nat][:auth]
# [:timeout]:digest" into a SpaMessage, refusing exactly what libfko's
# fko_decode_spa_data() refuses, with the same error names.
#
# Strategy: follow the reference decoder's order (1.12): size, printable,
# field count, digest by length (SHA3 fallback), then one field after the
# other, each with its size limit, base64 decode and validation. The
# validators (username 1.6, access 1.4, command 1.5, NAT 1.8, allow-IP via
# inet_aton rules) and the strtol emulation (1.7) are small pure functions.
#
# Invariants: decode_plaintext raises only SpaRefused. Only ASCII digits
# count as digits (str.isdigit and int() would accept other Unicode digits
# and '_'), and every int() call sees a checked [0-9] string. Decoded
# base64 values are cut at the first NUL, as C string handling does (1.2).

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .b64 import b64_decode_lenient
from .crypto import digest_b64, digest_candidates
from .errors import SpaRefused

__all__ = [
    "MSG_TYPE_NAMES",
    "SpaMessage",
    "decode_plaintext",
    "is_valid_ipv4_addr",
    "validate_access_msg",
    "validate_cmd_msg",
    "validate_nat_access_msg",
    "validate_username",
]

# Limits from lib/fko_limits.h (spa-protocol.md 5.3).
MIN_SPA_ENCODED_MSG_SIZE: Final = 36
MAX_SPA_ENCODED_MSG_SIZE: Final = 1500  # exclusive
MIN_SPA_FIELDS: Final = 6
MAX_SPA_FIELDS: Final = 9
RAND_VAL_SIZE: Final = 16
MAX_SPA_USERNAME_SIZE: Final = 64
MAX_SPA_TIMESTAMP_SIZE: Final = 12
MAX_SPA_VERSION_SIZE: Final = 8
MAX_SPA_MESSAGE_TYPE_SIZE: Final = 2
MAX_SPA_MESSAGE_SIZE: Final = 256
MAX_SPA_CMD_LEN: Final = 1400
MAX_HOSTNAME_LEN: Final = 70
MAX_CLIENT_TIMEOUT: Final = 2 << 15  # 65536 (1.7)
# 1.7: libfko truncates the timestamp to a 32-bit int; we refuse what would wrap.
MAX_TIMESTAMP: Final = 2**31 - 1
_LONG_MAX: Final = 2**63 - 1  # strtol's ERANGE bound on the 64-bit reference build

#: fwknop's names for the message types (1.3, msg_type_inttostr).
MSG_TYPE_NAMES: Final = (
    "Command msg",
    "Access msg",
    "NAT access msg",
    "Client timeout access msg",
    "Client timeout NAT access msg",
    "Local NAT access msg",
    "Client timeout local NAT access msg",
)
_NAT_TYPES: Final = frozenset((2, 4, 5, 6))
_TIMEOUT_TYPES: Final = frozenset((3, 4, 6))
# 1.11: most ':' allowed from the type field to the end of the body.
_MAX_COLONS_AFTER_TYPE: Final = (2, 2, 3, 3, 4, 3, 4)

_PRINTABLE: Final = bytes(range(0x20, 0x7F))
_DIGITS: Final = "0123456789"
_ASCII_ALNUM: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" + _DIGITS)
# 1.6: printable characters a username may not contain.
_USERNAME_FORBIDDEN: Final = frozenset('"/\\[]:;|=,+*?<>')
# 1.8: characters a NAT host may not contain.
_NAT_HOST_FORBIDDEN: Final = frozenset(" /?\"'\\")
# C isspace() in the "C" locale, skipped by strtol (1.7).
_C_SPACE: Final = " \t\n\v\f\r"
_STRTOL_RE: Final = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]*)")


@dataclass(frozen=True, slots=True)
class SpaMessage:
    """The decoded content of one authenticated SPA packet (1.1).

    ``message``, ``nat_access`` and ``server_auth`` are the base64-decoded
    values, cut at a NUL like the C strings. Bytes that are not UTF-8
    (possible only in command text, NAT host and server auth) are kept as
    surrogate escapes: ``value.encode("utf-8", "surrogateescape")`` gives
    back the exact bytes.
    """

    rand: str
    username: str
    timestamp: int
    version: str
    msg_type: int
    message: str
    nat_access: str | None
    server_auth: str | None
    client_timeout: int  # 0 when absent
    digest_type: str  # the inner digest that matched, e.g. "sha256", "sha3_256"

    @property
    def allow_ip(self) -> str:
        """The text before the first ``,`` of the message (the IP to open for)."""
        return self.message.partition(",")[0]

    @property
    def access(self) -> tuple[tuple[str, int], ...]:
        """``(proto, port)`` pairs requested by an access message (types 1-6).

        Empty for a command message. Protocols are lower-case (``tcp``/``udp``
        are the only ones validation lets through, 1.4).
        """
        if self.msg_type == 0:
            return ()
        pairs = []
        for item in self.message.split(",")[1:]:
            proto, _, port = item.partition("/")
            pairs.append((proto.lower(), int(port)))
        return tuple(pairs)

    @property
    def command(self) -> str | None:
        """The command text after the first ``,`` of a type-0 message, else None."""
        if self.msg_type != 0:
            return None
        return self.message.partition(",")[2]

    @property
    def nat(self) -> tuple[str, int] | None:
        """``(host, port)`` of the NAT access field (types 2, 4, 5, 6), else None."""
        if self.nat_access is None:
            return None
        host, _, port = self.nat_access.partition(",")
        return host, int(port)


def _ascii_digits(text: str) -> bool:
    return bool(text) and not text.strip(_DIGITS)


def _strtol(text: str) -> int:
    # 1.7 (strtol base 10): skip leading C whitespace, optional sign, digits;
    # trailing garbage is ignored and no digits at all gives 0 without error.
    # Raises ValueError where strtol would set ERANGE.
    match = _STRTOL_RE.match(text)
    assert match is not None  # the pattern matches the empty prefix
    sign, digits = match.groups()
    if not digits:
        return 0
    value = int(digits)
    if value > _LONG_MAX:
        raise ValueError("ERANGE")
    return -value if sign == "-" else value


def is_valid_ipv4_addr(text: str) -> bool:
    """libfko's ``is_valid_ipv4_addr``: 7..16 chars, three dots, ``inet_aton`` accepts.

    Each of the four parts must be a non-empty ASCII number no larger than
    255; as in ``inet_aton`` a leading ``0`` makes the part octal (so ``08``
    is invalid, ``010`` is 8). Hex parts are impossible here (digits and dots
    only, the callers check that).
    """
    if not 7 <= len(text) <= 16 or text.count(".") != 3:
        return False
    for part in text.split("."):
        if not _ascii_digits(part):
            return False
        if len(part) > 1 and part[0] == "0":
            if part.strip("01234567"):
                return False
            value = int(part, 8)
        else:
            value = int(part)
        if value > 255:
            return False
    return True


def _valid_allow_ip(message: str) -> bool:
    # 1.4 step 1: the text before the first ',' holds only digits and dots,
    # is shorter than 16 chars and is a valid IPv4 address.
    ip = message.partition(",")[0]
    if len(ip) >= 16 or ip.strip(_DIGITS + "."):
        return False
    return is_valid_ipv4_addr(ip)


def validate_access_msg(message: str) -> bool:
    """1.4: ``IP,proto/port[,proto/port...]`` with tcp/udp and ports 1..65535."""
    if len(message) >= MAX_SPA_MESSAGE_SIZE or not _valid_allow_ip(message):
        return False
    _, comma, rest = message.partition(",")
    if not comma or not rest:
        return False
    for item in rest.split(","):
        # 1.4 step 3: the item must start with tcp/udp/icmp/none and its first
        # '/' must be at index <= 3, so only "tcp/" and "udp/" can pass. A
        # trailing comma leaves an empty item, which fails here (step 5).
        if item[:4] not in ("tcp/", "udp/"):
            return False
        port = item[4:]
        # 1.4 step 4: 1..5 ASCII digits up to the end or the next ','.
        if not 1 <= len(port) <= 5 or not _ascii_digits(port):
            return False
        if not 1 <= int(port) <= 65535:
            return False
    return True


def validate_cmd_msg(message: str) -> bool:
    """1.5: ``IP,<command>`` with a valid allow-IP and a non-empty command."""
    if len(message) >= MAX_SPA_CMD_LEN or not _valid_allow_ip(message):
        return False
    _, comma, command = message.partition(",")
    return bool(comma and command)


def validate_nat_access_msg(nat: str) -> bool:
    """1.8: ``host,port``: one comma, host <= 70 chars without `` /?"'\\``, port 1..65535."""
    if len(nat) >= MAX_SPA_MESSAGE_SIZE or nat.count(",") != 1:
        return False
    host, _, port = nat.partition(",")
    if len(host) > MAX_HOSTNAME_LEN or not _NAT_HOST_FORBIDDEN.isdisjoint(host):
        return False
    if not 1 <= len(port) <= 5 or not _ascii_digits(port):
        return False
    return 1 <= int(port) <= 65535


def validate_username(username: str) -> bool:
    """1.6: non-empty; over the first 64 chars, each is ASCII alphanumeric or
    printable ASCII other than ``" / \\ [ ] : ; | = , + * ? < >``."""
    if not username:
        return False
    for char in username[:MAX_SPA_USERNAME_SIZE]:
        if char in _ASCII_ALNUM:
            continue
        if not " " <= char <= "~" or char in _USERNAME_FORBIDDEN:
            return False
    return True


def _b64_field(text: str, code: str) -> str:
    # Decode one base64 field; the result is used as a C string (1.2), so it
    # ends at the first NUL.
    try:
        raw = b64_decode_lenient(text)
    except ValueError as exc:
        raise SpaRefused(code) from exc
    return raw.partition(b"\0")[0].decode("utf-8", "surrogateescape")


def _split_digest(text: str) -> tuple[str, str]:
    # 1.12: the digest follows the last ':' -- but the reference only looks
    # at the first MAX_SPA_FIELDS + 2 separators, so with more colons the
    # "digest" keeps some of them and fails its checks later.
    cut = -1
    for _ in range(MAX_SPA_FIELDS + 2):
        nxt = text.find(":", cut + 1)
        if nxt < 0:
            break
        cut = nxt
    return text[:cut], text[cut + 1:]


def _verify_digest(body: str, digest: str) -> str:
    candidates = digest_candidates(len(digest))
    if not candidates:
        raise SpaRefused("INVALID_DIGEST_TYPE")
    data = body.encode("ascii")
    # Not at import (RSS budget, crypto.py's header); digest_b64 loads it.
    import hmac

    for name in candidates:
        # 1.10: constant-time compare; SHA256 -> SHA3-256, SHA512 -> SHA3-512.
        if hmac.compare_digest(digest_b64(name, data), digest):
            return name
    raise SpaRefused("DIGEST_VERIFICATION_FAILED")


def _field(fields: list[str], index: int, limit: int, name: str) -> str:
    # One field with libfko's two size checks: DECODE_<name>_MISSING when
    # empty (or absent: the text has fewer fields), DECODE_<name>_TOOBIG
    # when longer than its limit (1.12).
    text = fields[index] if index < len(fields) else ""
    if not text:
        raise SpaRefused(f"DECODE_{name}_MISSING")
    if len(text) > limit:
        raise SpaRefused(f"DECODE_{name}_TOOBIG")
    return text


def decode_plaintext(plaintext: bytes) -> SpaMessage:
    """Decode and validate a decrypted SPA plaintext (spa-protocol.md 1.12).

    Args:
        plaintext: the decrypted bytes with the padding removed, i.e.
            ``"<fields>:<digest>"``.

    Returns:
        The decoded message.

    Raises:
        SpaRefused: with the libfko error name of the first failing check
            (e.g. ``DIGEST_VERIFICATION_FAILED``, ``DECODE_ACCESS_VALIDFAIL``).
    """
    if not MIN_SPA_ENCODED_MSG_SIZE <= len(plaintext) < MAX_SPA_ENCODED_MSG_SIZE:
        raise SpaRefused("DECODE_MSGLEN_VALIDFAIL")
    if plaintext.translate(None, _PRINTABLE):
        raise SpaRefused("DECODE_NON_ASCII")  # 1.12: every byte isprint()
    text = plaintext.decode("ascii")
    if text.count(":") < MIN_SPA_FIELDS:
        raise SpaRefused("DECODE_LT_MIN_FIELDS")
    body, digest = _split_digest(text)
    digest_type = _verify_digest(body, digest)  # 1.10: before any field is parsed

    fields = body.split(":")
    rand = fields[0]
    if len(rand) < RAND_VAL_SIZE:
        raise SpaRefused("DECODE_RAND_MISSING")

    user_field = _field(fields, 1, MAX_SPA_USERNAME_SIZE, "USERNAME")
    username = _b64_field(user_field, "DECODE_USERNAME_DECODEFAIL")
    if not validate_username(username):
        raise SpaRefused("DECODE_USERNAME_VALIDFAIL")

    ts_field = _field(fields, 2, MAX_SPA_TIMESTAMP_SIZE, "TIMESTAMP")
    try:
        timestamp = _strtol(ts_field)
    except ValueError as exc:
        raise SpaRefused("DECODE_TIMESTAMP_DECODEFAIL") from exc
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise SpaRefused("DECODE_TIMESTAMP_DECODEFAIL")

    # 1.1: the version is free-form, only its size is checked (14.24).
    version = _field(fields, 3, MAX_SPA_VERSION_SIZE, "VERSION")

    type_field = _field(fields, 4, MAX_SPA_MESSAGE_TYPE_SIZE, "MSGTYPE")
    msg_type = _strtol(type_field)  # two chars cannot overflow
    if not 0 <= msg_type <= 6:
        raise SpaRefused("DECODE_MSGTYPE_DECODEFAIL")
    if len(fields) - 5 > _MAX_COLONS_AFTER_TYPE[msg_type]:
        raise SpaRefused("DECODE_WRONG_NUM_FIELDS")  # 1.11

    msg_field = _field(fields, 5, MAX_SPA_MESSAGE_SIZE, "MESSAGE")
    message = _b64_field(msg_field, "DECODE_MESSAGE_DECODEFAIL")
    if msg_type == 0:
        if not validate_cmd_msg(message):
            raise SpaRefused("DECODE_MESSAGE_VALIDFAIL")
    elif not validate_access_msg(message):
        raise SpaRefused("DECODE_ACCESS_VALIDFAIL")

    nxt = 6
    nat_access = None
    if msg_type in _NAT_TYPES:
        nat_field = _field(fields, 6, MAX_SPA_MESSAGE_SIZE, "NATACCESS")
        nat_access = _b64_field(nat_field, "DECODE_NATACCESS_DECODEFAIL")
        if not validate_nat_access_msg(nat_access):
            raise SpaRefused("DECODE_NATACCESS_VALIDFAIL")
        nxt = 7

    # 1.9: whatever follows is server auth and/or the client timeout.
    rest = ":".join(fields[nxt:])
    server_auth = None
    if len(rest) > MAX_SPA_MESSAGE_SIZE:
        raise SpaRefused("DECODE_SRVAUTH_MISSING")  # sic, libfko's name for it
    if rest and msg_type not in _TIMEOUT_TYPES:
        server_auth = _b64_field(rest, "DECODE_SRVAUTH_DECODEFAIL")
        rest = ""
    elif ":" in rest:
        auth_field, _, rest = rest.partition(":")
        server_auth = _b64_field(auth_field, "DECODE_EXTRA_DECODEFAIL")

    client_timeout = 0
    if msg_type in _TIMEOUT_TYPES:
        if not rest:
            raise SpaRefused("DECODE_TIMEOUT_MISSING")
        if not _ascii_digits(rest):
            raise SpaRefused("DECODE_TIMEOUT_VALIDFAIL")  # digits only (strspn)
        client_timeout = int(rest)
        if client_timeout > MAX_CLIENT_TIMEOUT:
            raise SpaRefused("DECODE_TIMEOUT_DECODEFAIL")

    return SpaMessage(
        rand=rand[:RAND_VAL_SIZE],
        username=username,
        timestamp=timestamp,
        version=version,
        msg_type=msg_type,
        message=message,
        nat_access=nat_access,
        server_auth=server_auth,
        client_timeout=client_timeout,
        digest_type=digest_type,
    )
