# Value syntaxes of fwknopd.conf and access.conf: C-style integers, address
# lists (SOURCE, DESTINATION), proto/port lists (OPEN_PORTS, RESTRICT_PORTS)
# and the ACCESS_EXPIRE date.
#
# Purpose: turn the list texts of spa-protocol.md 8.2 and 6.5 into typed,
# frozen values, and reject exactly what fwknopd rejects at start-up
# (`SOURCE 0.0.0.0/0`, `123.123.123.1234/24`, `A0.10.10.10`, `tcp/123453`).
#
# Strategy: parse_address_list / parse_port_list raise ValueError with a
# reason; the file parsers wrap that into a ConfigError that names file, line
# and variable. Addresses are read with the inet_aton rules of musl (the C
# library OpenWrt ships), so the odd forms fwknopd accepts there keep working:
# `10.1` is 10.0.0.1, `0x7f.1` is 127.0.0.1, a leading 0 means octal.
#
# Deliberate differences from the reference, each marked at its line:
# whitespace around a list item is ignored (fwknopd keeps a space before a
# comma and then fails on `1.2.3.0/24 ,`), a dotted mask must be contiguous
# (IPv4Network cannot hold `255.0.255.0`), and a port must be all digits
# (strtol would read `tcp/22-25` silently as tcp/22), and port 0 is refused
# (libfko only lets a client request 1..65535, so a 0 entry can never match).
# parse_int is the strict integer reader of both files (c_strtol is kept for
# the reference's semantics where they are wanted).
#
# Invariants: the parse functions raise only ValueError; AddressList is
# immutable and `any` is True exactly when an item was ANY. A ValueError
# message never quotes the text it was given (it may be a key pasted into
# the wrong line): it names the entry by its position and says what is
# wrong with it.

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

__all__ = ["AddressList", "c_strtol", "parse_address_list", "parse_expire_date", "parse_int",
           "parse_port_list"]

# fwknop's MAX_IPV4_STR_LEN (16, room for "255.255.255.255" + NUL) and
# MIN_IPV4_STR_LEN (7, "0.0.0.0"): bounds of the address and dotted-mask parts.
_MAX_IPV4_STR_LEN = 16
_MIN_IPV4_STR_LEN = 7
_INT_MIN = -(2**31)
_INT_MAX = 2**31 - 1
_C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale
_PROTOCOLS = ("tcp", "udp")  # 6.5: any other protocol is a fatal config error
_DEC_DIGITS = frozenset("0123456789")
_OCT_DIGITS = frozenset("01234567")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only, unlike str.isdigit()


def c_strtol(text: str, *, limit: int = _INT_MAX) -> int | None:
    """Read an int the way fwknop's ``strtol_wrapper`` does (spa-protocol.md 1.7).

    Leading C whitespace and one sign are skipped, digits are read up to the
    first non-digit (trailing garbage is ignored), and text without digits is
    0, as glibc and musl give it. Returns None where strtol reports ERANGE
    (the value does not fit the C ``int`` fwknop stores it in, or ``limit``
    in magnitude for the few 64-bit values such as epoch seconds).
    """
    pos = 0
    while pos < len(text) and text[pos] in _C_SPACE:
        pos += 1
    sign = 1
    if pos < len(text) and text[pos] in "+-":
        sign = -1 if text[pos] == "-" else 1
        pos += 1
    start = pos
    while pos < len(text) and "0" <= text[pos] <= "9":
        pos += 1
    if pos == start:
        return 0
    digits = text[start:pos]
    if len(digits) > 20:
        return None  # far outside any C long; also keeps int() cheap
    value = sign * int(digits)
    return value if -limit - 1 <= value <= limit else None


def parse_int(text: str) -> int | None:
    """A whole config value as a decimal integer, or None if it is not one.

    Deliberately stricter than the reference's strtol (c_strtol): a value
    with no digits ("ten") is None, not 0, and so is one with text after the
    number ("45s", "30 KEY_BASE64 ..." from two joined lines). The caller
    makes None a fatal error; range checks are the caller's too.
    """
    return int(text) if _INTEGER.fullmatch(text) else None


def _strtoul0(part: str) -> int | None:
    """One inet_aton component: strtoul base 0 that must use up ``part``."""
    # musl's inet_aton also demands that a component starts with a digit.
    # The digit sets are checked by hand: int() would also take "_", signs
    # and whitespace.
    if not part or not "0" <= part[0] <= "9":
        return None
    if part[:2] in ("0x", "0X"):
        digits, base, allowed = part[2:], 16, _HEX_DIGITS
    elif part[0] == "0":
        digits, base, allowed = part, 8, _OCT_DIGITS
    else:
        digits, base, allowed = part, 10, _DEC_DIGITS
    if not digits or not set(digits) <= allowed:
        return None
    return int(digits, base)


def _inet_aton(text: str) -> int | None:
    """IPv4 text to a host-order int, musl inet_aton rules, None if invalid.

    One to four dot-separated components; the last one fills all remaining
    bytes (`10.1` = 10.0.0.1), each earlier one is a single byte.
    """
    parts = text.split(".")
    if len(parts) > 4 or any(len(p) > 12 for p in parts):
        return None
    values: list[int] = []
    for part in parts:
        value = _strtoul0(part)
        if value is None:
            return None
        values.append(value)
    *head, last = values
    if any(v > 255 for v in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    result = 0
    for v in head:
        result = (result << 8) | v
    return (result << (8 * (4 - len(head)))) | last


def _mask_to_prefix(mask: int) -> int | None:
    """Prefix length of a contiguous netmask, None for e.g. 255.0.255.0."""
    prefix = mask.bit_count()
    return prefix if mask == ((0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF) else None


def _parse_address(item: str) -> IPv4Network:
    """One non-ANY item of an address list (spa-protocol.md 8.2)."""
    ip_text, slash, mask_text = item.partition("/")
    if len(ip_text) >= _MAX_IPV4_STR_LEN:
        raise ValueError("the address part is longer than 15 characters")
    if not slash:
        prefix = 32
    elif not mask_text:
        raise ValueError("missing mask value after '/'")
    elif len(mask_text) <= 2:
        # 8.2: a CIDR mask must be 1..32; /0 is rejected (use ANY instead).
        bits = c_strtol(mask_text)
        if bits is None or not 1 <= bits <= 32:
            raise ValueError("the CIDR mask is not in 1..32 (use ANY for everything)")
        prefix = bits
    elif _MIN_IPV4_STR_LEN <= len(mask_text) < _MAX_IPV4_STR_LEN:
        mask = _inet_aton(mask_text)
        if mask is None:
            raise ValueError("the dotted mask is not an IPv4 address")
        contiguous = _mask_to_prefix(mask)
        if contiguous is None:
            # Difference: fwknopd would AND with any bit pattern; a
            # non-contiguous mask is almost surely a typo, so refuse it.
            raise ValueError("the dotted mask is not contiguous")
        prefix = contiguous
    else:
        raise ValueError("the mask is neither /1../32 nor a dotted mask")
    address = _inet_aton(ip_text)
    if address is None:
        raise ValueError("the address is not an IPv4 address")
    # 8.2: the match is (ip & mask) == (net & mask), so host bits may be set.
    return IPv4Network((address, prefix), strict=False)


@dataclass(frozen=True, slots=True)
class AddressList:
    """A parsed SOURCE or DESTINATION list (spa-protocol.md 8.2).

    Attributes:
        any: an item was ``ANY`` (case-insensitive): every address matches.
        networks: the other items, in the order written.
        text: the list exactly as written in access.conf.
    """

    any: bool
    networks: tuple[IPv4Network, ...]
    text: str

    def matches(self, ip: IPv4Address) -> bool:
        """True if ``ip`` is covered by ANY or by one of the networks."""
        return self.any or any(ip in net for net in self.networks)


def _items(text: str, what: str) -> list[str]:
    # Difference: surrounding whitespace of an item is dropped; fwknopd skips
    # only leading whitespace (trailing whitespace of the whole value is
    # chopped by the line reader, 8.1).
    items = [item.strip(_C_SPACE) for item in text.split(",")]
    for number, item in enumerate(items, start=1):
        if not item:
            raise ValueError(f"entry {number} of the {what} list is an empty entry")
    return items


def parse_address_list(text: str) -> AddressList:
    """Parse ``ANY, 10.0.0.0/8, 192.168.1.1, 172.16.0.0/255.240.0.0``.

    Raises:
        ValueError: an entry is not ANY, a.b.c.d, a.b.c.d/1..32 or
            a.b.c.d/m.m.m.m (contiguous); the message says which and why.
    """
    any_seen = False
    networks: list[IPv4Network] = []
    for number, item in enumerate(_items(text, "address"), start=1):
        if item.upper() == "ANY":
            any_seen = True
            continue
        try:
            networks.append(_parse_address(item))
        except ValueError as exc:
            raise ValueError(f"entry {number} is invalid: {exc}") from None
    return AddressList(any=any_seen, networks=tuple(networks), text=text)


def parse_port_list(text: str) -> tuple[tuple[str, int], ...]:
    """Parse ``tcp/22, udp/53`` into ``(("tcp", 22), ("udp", 53))`` (6.5).

    Protocols are case-insensitive and returned in lower case; ports are
    1..65535.

    Raises:
        ValueError: an entry has no ``/``, a protocol other than tcp/udp, or
            a port that is not a number in 1..65535.
    """
    result: list[tuple[str, int]] = []
    for number, item in enumerate(_items(text, "port"), start=1):
        proto, slash, port_text = item.partition("/")
        proto = proto.strip(_C_SPACE).lower()
        port_text = port_text.strip(_C_SPACE)
        if not slash:
            raise ValueError(f"entry {number} is invalid: need <proto>/<port>, e.g. tcp/22")
        if proto not in _PROTOCOLS:
            raise ValueError(f"entry {number} is invalid: protocol must be tcp or udp")
        # Difference: all digits required; strtol would take "22-25" as 22.
        # Difference: port 0 is refused. The server's list parser allows it
        # (1.7), but libfko only lets a client request 1..65535, so a tcp/0
        # entry could never match and is surely a mistake.
        if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5 \
                or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"entry {number} is invalid: port must be a number in 1..65535")
        result.append((proto, int(port_text)))
    return tuple(result)


def _scan_int(text: str, pos: int, width: int) -> tuple[int, int] | None:
    """scanf ``%<width>d`` at ``pos``: (value, end) or None."""
    while pos < len(text) and text[pos] in _C_SPACE:
        pos += 1
    end, digits = min(len(text), pos + width), pos
    if digits < end and text[digits] in "+-":
        digits += 1
    stop = digits
    while stop < end and "0" <= text[stop] <= "9":
        stop += 1
    return None if stop == digits else (int(text[pos:stop]), stop)


def parse_expire_date(value: str) -> int | None:
    """8.3 ACCESS_EXPIRE: ``MM/DD/YYYY`` -> epoch of local midnight, or None.

    Read like fwknopd's ``sscanf("%2d/%2d/%4d")`` + ``mktime``: two-digit
    years are 20YY, out-of-range days and months are normalised, text after
    the year is ignored. None when the three numbers are not there or the
    date does not fit the platform's time_t.
    """
    fields: list[int] = []
    pos = 0
    for width, sep in ((2, "/"), (2, "/"), (4, "")):  # sscanf "%2d/%2d/%4d"
        got = _scan_int(value, pos, width)
        if got is None or (sep and value[got[1]:got[1] + 1] != sep):
            return None
        fields.append(got[0])
        pos = got[1] + len(sep)
    month, day, year = fields
    month = month - 1 if month > 0 else month
    # Two-digit years are 20YY; mktime normalises out-of-range days/months.
    tm_year = year - 1900 if year > 1900 else year + 100 if year < 100 else year
    try:
        return int(time.mktime((tm_year + 1900, month + 1, day, 0, 0, 0, 0, 0, -1)))
    except (OverflowError, ValueError, OSError):
        return None
