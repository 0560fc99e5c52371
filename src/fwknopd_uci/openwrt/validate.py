# The value rules of /etc/config/fwknopd: one table, used by the generator and
# (later) by the settings page, so the page cannot save what the generator
# would refuse.
#
# Purpose: the shipped init script copies every UCI value into fwknopd.conf and
# access.conf unchecked (openwrt.md 1.3, 1.4 consequence 2): a value holding a
# newline injects configuration lines, a typo in a port list only shows up when
# fwknopd exits. Here every option the generator writes is checked first, with
# messages that name the section and option, e.g. "@access[1].OPEN_PORTS: ...".
#
# Strategy: a table of known options per section type, each with a LuCI-style
# datatype (name, one-line description, check, and the normalisation the
# generator applies: booleans are written as Y/N). Address and port lists are
# read by the project's own parsers (config/lists.py). Options not in the table
# are plain text; every value of every type must be one line without `;` or
# NUL. Whole-section rules (SOURCE present, one key of each kind, keys differ)
# are in validate_section.
#
# Invariants: validate_option never raises for a str or list value; it returns
# an error message or None. Only names matching WRITTEN_NAME are written by the
# generator and checked here; lower-case helper options (LuCI's old `keytype`)
# are neither.

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address
from types import MappingProxyType
from typing import Final

from ..config import parse_address_list, parse_port_list
from ..config.errors import shown
from ..config.lists import parse_expire_date
from ..spa import ENCRYPTION_MODES, HMAC_TYPES, b64_decode_lenient
from .uci import UciPackage, UciSection, uci_bool

__all__ = [
    "ACCESS_OPTIONS",
    "CONFIG_OPTIONS",
    "PLACEHOLDERS",
    "WRITTEN_NAME",
    "Datatype",
    "ValidationError",
    "is_placeholder",
    "is_written",
    "normalize_value",
    "option_datatype",
    "section_ref",
    "validate_option",
    "validate_package",
    "validate_section",
    "value_text",
]

#: Option names of `access` and `config` sections that become `NAME value`
#: lines: fwknopd variables are upper case.
WRITTEN_NAME: Final = re.compile(r"[A-Z][A-Z0-9_]*")
#: Placeholder key values (compared case-insensitively): `__CHANGEME__` since
#: Oct 2020, `CHANGEME` before, which fwknopd would take as a literal key.
PLACEHOLDERS: Final = frozenset({"__CHANGEME__", "CHANGEME"})
#: UCI lists are written as one value, items joined like this.
LIST_SEPARATOR: Final = ", "

_TIMEOUT_MAX: Final = 8388608  # access.conf: FW_ACCESS_TIMEOUT etc. 0..2<<22
_CMD_MAX: Final = 255  # a CMD_CYCLE command must be shorter than 256 chars
_KEY_MAX: Final = 32  # Rijndael passphrase / key bytes
_HMAC_KEY_MAX: Final = 128  # the fwknop client's cap on HMAC key bytes
_TRUE: Final = frozenset({"y", "yes", "1", "on", "true", "enabled"})
_FALSE: Final = frozenset({"n", "no", "0", "off", "false", "disabled"})
_B64: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_DEVICE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,15}")  # Linux IFNAMSIZ - 1
_NETWORK: Final = re.compile(r"[A-Za-z0-9_]{1,64}")  # a UCI section name (netifd)
_NFT_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_FACILITIES: Final = ("LOG_DAEMON", *(f"LOG_LOCAL{i}" for i in range(8)))


def _same(value: str) -> str:
    return value


@dataclass(frozen=True, slots=True)
class Datatype:
    """A LuCI-style value type.

    Attributes:
        name: the type's name as shown to users, e.g. ``uinteger(1-65535)``.
        description: one line saying what is accepted (and what is written).
        check: returns what is wrong with a one-line value, or None.
        normalize: the text the generator writes for an accepted value.
        list_ok: a UCI ``list`` of this type is accepted (items joined by ", ").
    """

    name: str
    description: str
    check: Callable[[str], str | None]
    normalize: Callable[[str], str] = _same
    list_ok: bool = False


def _text(value: str) -> str | None:
    return None


def _address_list(value: str) -> str | None:
    try:
        parse_address_list(value)
    except ValueError as exc:
        return f"'{shown(value)}' is not an address list: {exc}"
    return None


def _port_list(value: str) -> str | None:
    try:
        parse_port_list(value)
    except ValueError as exc:
        return f"'{shown(value)}' is not a port list (tcp/22, udp/1194, ...): {exc}"
    return None


def _uinteger(low: int, high: int) -> Datatype:
    def check(value: str) -> str | None:
        # LuCI's uinteger: decimal digits only (no sign, no spaces, no 0x).
        if not (value.isascii() and value.isdigit()) or len(value) > 20 \
                or not low <= int(value) <= high:
            return f"'{shown(value)}' is not a whole number in {low}..{high}"
        return None
    return Datatype(f"uinteger({low}-{high})", f"a whole number from {low} to {high}", check)


def _bool_check(value: str) -> str | None:
    if value.lower() in _TRUE or value.lower() in _FALSE:
        return None
    return f"'{shown(value)}' is not a boolean: use Y or N (y/yes/1/on/true are written as Y, " \
           "n/no/0/off/false as N)"


def _bool_normalize(value: str) -> str:
    return "Y" if value.lower() in _TRUE else "N"


def _base64(high: int) -> Datatype:
    def check(value: str) -> str | None:
        if _B64.fullmatch(value) is None or len(value.rstrip("=")) % 4 == 1:
            return "is not base64 (A-Z a-z 0-9 + / with '=' padding at the end)"
        size = len(b64_decode_lenient(value))
        if not 1 <= size <= high:
            return f"decodes to {size} bytes; it must be 1..{high} bytes"
        return None
    return Datatype(f"base64(1-{high})", f"a base64 key of 1 to {high} bytes", check)


def _plain_key(high: int) -> Datatype:
    def check(value: str) -> str | None:
        if value != value.strip():
            return "starts or ends with white space, which fwknopd would drop from the key"
        size = len(value.encode("utf-8", "surrogateescape"))
        if size > high:
            return f"is {size} bytes long; it must be at most {high} bytes"
        return None
    return Datatype(f"key(1-{high})", f"a key of 1 to {high} characters (bytes)", check)


def _choice(name: str, choices: tuple[str, ...], *, upper: bool = False) -> Datatype:
    allowed = tuple(c.upper() if upper else c.lower() for c in choices)
    listed = ", ".join(allowed)

    def check(value: str) -> str | None:
        wanted = value.upper() if upper else value.lower()
        return None if wanted in allowed else f"'{shown(value)}' is not one of {listed}"
    return Datatype(name, f"one of {listed} (any case)", check)


def _ipv4(value: str) -> str | None:
    try:
        IPv4Address(value)
    except AddressValueError:
        return f"'{shown(value)}' is not an IPv4 address (a.b.c.d)"
    return None


def _nat_target(value: str) -> str | None:
    parts = value.split()
    if len(parts) != 2 or _ipv4(parts[0]) is not None or not parts[1].isascii() \
            or not parts[1].isdigit() or int(parts[1]) > 65535:
        return f"'{shown(value)}' is not '<IPv4 address> <port>', e.g. '192.0.2.10 22'"
    return None


def _date(value: str) -> str | None:
    if parse_expire_date(value) is None:
        return f"'{shown(value)}' is not a date MM/DD/YYYY"
    return None


def _command(value: str) -> str | None:
    if len(value) > _CMD_MAX:
        return f"is {len(value)} characters long; a command must be shorter than 256"
    return None


def _device(value: str) -> str | None:
    if _DEVICE.fullmatch(value) is None or value in (".", ".."):
        return f"'{shown(value)}' is not a network device name (1..15 of A-Z a-z 0-9 _ . : -)"
    return None


def _network(value: str) -> str | None:
    if _NETWORK.fullmatch(value) is None:
        return f"'{shown(value)}' is not a logical network name (A-Z a-z 0-9 _), e.g. 'wan'"
    return None


def _path(value: str) -> str | None:
    if not value.startswith("/"):
        return f"'{shown(value)}' is not an absolute path"
    return None


def _nft_table(value: str) -> str | None:
    parts = value.split()
    if len(parts) != 2 or parts[0] not in ("ip", "inet") or not _NFT_NAME.fullmatch(parts[1]):
        return f"'{shown(value)}' is not '<ip|inet> <table name>', e.g. 'inet fw4'"
    return None


def _nft_name(value: str) -> str | None:
    if _NFT_NAME.fullmatch(value) is None:
        return f"'{shown(value)}' is not an nftables name (letters, digits, '_'; at most 64)"
    return None


def _refused(reason: str) -> Datatype:
    def check(value: str) -> str | None:
        return reason
    return Datatype("refused", reason, check)


def _uci_bool(value: str) -> str | None:
    if uci_bool(value) is None:
        return f"'{shown(value)}' is not a UCI boolean (1/0, on/off, true/false, yes/no, " \
               "enabled/disabled)"
    return None


TEXT: Final = Datatype("string", "any text on one line, without ';'", _text, list_ok=True)
ADDRESS_LIST: Final = Datatype("address list", "ANY or IPv4 addresses / networks, comma-separated "
                               "(e.g. 192.0.2.0/24, 198.51.100.7)", _address_list, list_ok=True)
PORT_LIST: Final = Datatype("port list", "proto/port, comma-separated (e.g. tcp/22, udp/1194)",
                            _port_list, list_ok=True)
BOOL: Final = Datatype("bool", "Y or N (y/yes/1/on/true are written as Y, n/no/0/off/false as N)",
                       _bool_check, _bool_normalize)
IPV4: Final = Datatype("ip4addr", "an IPv4 address a.b.c.d", _ipv4)
NAT_TARGET: Final = Datatype("nat target", "'<IPv4 address> <port>'", _nat_target)
DATE: Final = Datatype("date", "MM/DD/YYYY", _date)
COMMAND: Final = Datatype("command", "a shell command shorter than 256 characters", _command)
DEVICE: Final = Datatype("netdev", "a network device name, e.g. eth1 or pppoe-wan", _device)
NETWORK: Final = Datatype("network", "a logical network (netifd interface), e.g. wan", _network)
PATH: Final = Datatype("file", "an absolute path", _path)
HMAC_TYPE: Final = _choice("hmac type", tuple(HMAC_TYPES))
ENCRYPTION_MODE: Final = _choice("encryption mode", ENCRYPTION_MODES, upper=True)
UCI_BOOL: Final = Datatype("uci bool", "1 or 0 (also on/off, true/false, yes/no)", _uci_bool)
_TIMEOUT: Final = _uinteger(0, _TIMEOUT_MAX)
_PORT: Final = _uinteger(1, 65535)

_ACCESS_BOOLS: Final = ("REQUIRE_SOURCE_ADDRESS", "REQUIRE_SOURCE", "ENABLE_CMD_EXEC",
                        "ENABLE_CMD_SUDO_EXEC", "FORCE_MASQUERADE", "FORWARD_ALL",
                        "DISABLE_DNAT", "GPG_ALLOW_NO_PW", "GPG_REQUIRE_SIG", "GPG_DISABLE_SIG",
                        "GPG_IGNORE_SIG_VERIFY_ERROR")
#: The known access.conf variables and their datatypes; others are TEXT.
ACCESS_OPTIONS: Final[Mapping[str, Datatype]] = MappingProxyType({
    "SOURCE": ADDRESS_LIST, "DESTINATION": ADDRESS_LIST,
    "OPEN_PORTS": PORT_LIST, "RESTRICT_PORTS": PORT_LIST,
    "KEY": _plain_key(_KEY_MAX), "KEY_BASE64": _base64(_KEY_MAX),
    "HMAC_KEY": _plain_key(_HMAC_KEY_MAX), "HMAC_KEY_BASE64": _base64(_HMAC_KEY_MAX),
    "HMAC_DIGEST_TYPE": HMAC_TYPE, "ENCRYPTION_MODE": ENCRYPTION_MODE,
    "FW_ACCESS_TIMEOUT": _TIMEOUT, "MAX_FW_TIMEOUT": _TIMEOUT, "CMD_CYCLE_TIMER": _TIMEOUT,
    "CMD_CYCLE_OPEN": COMMAND, "CMD_CYCLE_CLOSE": COMMAND,
    "FORCE_NAT": NAT_TARGET, "FORCE_SNAT": IPV4,
    "ACCESS_EXPIRE": DATE, "ACCESS_EXPIRE_EPOCH": _uinteger(0, 2**63 - 1),
    **{name: BOOL for name in _ACCESS_BOOLS},
})

_CONFIG_BOOLS: Final = (
    "ENABLE_PCAP_PROMISC", "ENABLE_PCAP_ANY_DIRECTION", "EXIT_AT_INTF_DOWN",
    "ENABLE_SPA_PACKET_AGING", "ENABLE_DIGEST_PERSISTENCE", "ENABLE_SPA_OVER_HTTP",
    "ALLOW_ANY_USER_AGENT", "ENABLE_X_FORWARDED_FOR", "ENABLE_TCP_SERVER", "ENABLE_UDP_SERVER",
    "ENABLE_NFQ_CAPTURE", "ENABLE_DESTINATION_RULE", "ENABLE_RULE_PREPEND", "ENABLE_NAT_DNS",
    "ENABLE_IPT_FORWARDING", "ENABLE_IPT_LOCAL_NAT", "ENABLE_IPT_SNAT", "ENABLE_IPT_OUTPUT",
    "FLUSH_IPT_AT_INIT", "FLUSH_IPT_AT_EXIT", "ENABLE_IPT_COMMENT_CHECK",
    "ENABLE_FIREWD_FORWARDING", "ENABLE_FIREWD_LOCAL_NAT", "ENABLE_FIREWD_SNAT",
    "ENABLE_FIREWD_OUTPUT", "FLUSH_FIREWD_AT_INIT", "FLUSH_FIREWD_AT_EXIT",
    "ENABLE_FIREWD_COMMENT_CHECK", "IPFW_ADD_CHECK_STATE")
# The integer ranges fwknopd checks at start-up (config/server_conf.py).
_CONFIG_RANGES: Final = {
    "PCAP_DISPATCH_COUNT": (1, 8388608), "PCAP_LOOP_SLEEP": (1, 8388608),
    "MAX_SNIFF_BYTES": (1, 32768), "MAX_SPA_PACKET_AGE": (1, 100000),
    "RULES_CHECK_THRESHOLD": (0, 131071), "TCPSERV_PORT": (1, 65535),
    "UDPSERV_PORT": (1, 65535), "UDPSERV_SELECT_TIMEOUT": (1, 8388608),
}
_UCI_OWNS_ACCESS: Final = ("fwknopd-uci writes access.conf from the access sections and passes "
                           "it with -a; this option would replace or shadow it")
#: The known fwknopd.conf variables and their datatypes; others are TEXT.
CONFIG_OPTIONS: Final[Mapping[str, Datatype]] = MappingProxyType({
    "PCAP_INTF": DEVICE, "NFQ_INTERFACE": DEVICE,
    **{name: _uinteger(low, high) for name, (low, high) in _CONFIG_RANGES.items()},
    "NFQ_PORT": _PORT, "CMD_EXEC_TIMEOUT": _uinteger(0, 2**31 - 1),
    "VERBOSE": _uinteger(0, 100),
    "SYSLOG_FACILITY": _choice("syslog facility", _FACILITIES, upper=True),
    "SNAT_TRANSLATE_IP": IPV4,
    "NFT_TABLE": Datatype("nft table", "'<ip|inet> <table name>', e.g. 'inet fw4'", _nft_table),
    "NFT_CHAIN": Datatype("nft name", "an nftables chain name", _nft_name),
    "NFT_SET": Datatype("nft name", "an nftables set name", _nft_name),
    **{name: PATH for name in ("FWKNOP_RUN_DIR", "FWKNOP_CONF_DIR", "DIGEST_FILE",
                               "FWKNOP_PID_FILE", "PCAP_FILE", "GPG_HOME_DIR", "GPG_EXE",
                               "SUDO_EXE", "FIREWALL_EXE")},
    "ACCESS_FILE": _refused(_UCI_OWNS_ACCESS), "ACCESS_FOLDER": _refused(_UCI_OWNS_ACCESS),
    **{name: BOOL for name in _CONFIG_BOOLS},
})
_OTHER_OPTIONS: Final[Mapping[str, Mapping[str, Datatype]]] = MappingProxyType({
    "global": MappingProxyType({"uci_enabled": UCI_BOOL}),
    "network": MappingProxyType({"network": NETWORK}),
})
_SECRETS: Final = frozenset({"KEY", "KEY_BASE64", "HMAC_KEY", "HMAC_KEY_BASE64",
                             "GPG_DECRYPT_PW"})


@dataclass(frozen=True, slots=True)
class ValidationError:
    """One refused value: ``str()`` gives ``@access[1].OPEN_PORTS: <message>``.

    Attributes:
        section_ref: ``@type[n]`` (anonymous) or the section name.
        option: the option name, or ``""`` for a whole-package problem.
        message: what is wrong, in words, on one line.
    """

    section_ref: str
    option: str
    message: str

    def __str__(self) -> str:
        where = f"{self.section_ref}.{self.option}" if self.option else self.section_ref
        return f"{where}: {self.message}"


def is_placeholder(value: str) -> bool:
    """True for a placeholder key (``__CHANGEME__`` or ``CHANGEME``, any case)."""
    return value.strip().upper() in PLACEHOLDERS


def is_written(section_type: str, name: str) -> bool:
    """True if the generator writes option ``name`` of a ``section_type`` section."""
    return section_type in ("access", "config") and WRITTEN_NAME.fullmatch(name) is not None


def option_datatype(section_type: str, name: str) -> Datatype | None:
    """The datatype of an option, TEXT for an unknown upper-case fwknopd
    variable, or None when the option is not written (nor checked)."""
    if section_type == "access":
        return ACCESS_OPTIONS.get(name, TEXT) if is_written(section_type, name) else None
    if section_type == "config":
        return CONFIG_OPTIONS.get(name, TEXT) if is_written(section_type, name) else None
    return _OTHER_OPTIONS.get(section_type, {}).get(name)


def value_text(value: str | list[str]) -> str:
    """The one value a UCI option stands for: a list's items joined by ", "."""
    return value if isinstance(value, str) else LIST_SEPARATOR.join(value)


def _line_problem(value: str) -> str | None:
    """Refuse what would break out of one `NAME value` line."""
    if "\n" in value or "\r" in value:
        return "contains a line break; a value must be one line (it would add lines to the " \
               "generated configuration)"
    if "\x00" in value:
        return "contains a NUL character"
    if ";" in value:
        return "contains ';', where fwknopd ends the value"
    if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in value):
        return "contains a control character"
    return None


def validate_option(section_type: str, name: str, value: str | list[str]) -> str | None:
    """Check one option value as the generator would write it.

    An empty value (or empty list) means "not set" and is accepted; so are
    options the generator does not write (lower-case helper options of
    ``access``/``config``, unknown options of ``global``/``network``).

    Args:
        section_type: ``access``, ``config``, ``global`` or ``network``.
        name: the UCI option name (the fwknopd variable for access/config).
        value: the option's value; a UCI list is a list of str.

    Returns:
        None if the value is accepted, else what is wrong (one line, without
        the section and option, and never echoing a secret).
    """
    datatype = option_datatype(section_type, name)
    if datatype is None:
        return None
    if isinstance(value, list):
        if not value:
            return None
        if not datatype.list_ok:
            return f"must be a single option, not a UCI list ({datatype.description})"
        for item in value:
            problem = _line_problem(item)
            if problem is not None:
                return f"an item {problem}"
            if not item.strip():
                return "has an empty list item"
    text = value_text(value)
    if not text:
        return None
    problem = _line_problem(text)
    if problem is not None:
        return problem
    if name in _SECRETS and is_placeholder(text):
        return f"is still the placeholder '{text.strip()}': run 'fwknopd-uci keys-init' or " \
               "enter a key"
    # The key types' messages never quote the value: a secret stays out of logs.
    return datatype.check(text)


def normalize_value(section_type: str, name: str, value: str | list[str]) -> str:
    """The text the generator writes for an accepted value (booleans -> Y/N)."""
    datatype = option_datatype(section_type, name)
    text = value_text(value)
    return datatype.normalize(text) if datatype is not None else text


def section_ref(pkg: UciPackage, section: UciSection) -> str:
    """``@type[n]`` for an anonymous section (n counts every section of that
    type, as uci does), the name for a named one."""
    if section.name is not None:
        return section.name
    for index, other in enumerate(pkg.sections_of(section.type)):
        if other is section:
            return f"@{section.type}[{index}]"
    return f"@{section.type}[?]"


def _set(section: UciSection, name: str) -> str | None:
    """The option as a one-line text, None if unset or empty."""
    value = section.options.get(name)
    if value is None:
        return None
    text = value_text(value)
    return text if text else None


def _key_bytes(name: str, value: str) -> bytes | None:
    if name.endswith("_BASE64"):
        try:
            return b64_decode_lenient(value)
        except ValueError:
            return None
    return value.encode("utf-8", "surrogateescape")


def validate_section(ref: str, section: UciSection) -> list[ValidationError]:
    """The whole-section rules, after the per-option ones.

    access: SOURCE is required; exactly one of KEY / KEY_BASE64 (a real key,
    not a placeholder); at most one of HMAC_KEY / HMAC_KEY_BASE64; the
    encryption and HMAC keys differ. Other section types have none.
    """
    if section.type != "access":
        return []
    errors: list[ValidationError] = []
    if _set(section, "SOURCE") is None:
        errors.append(ValidationError(ref, "SOURCE", "is missing: every access section needs "
                                      "a SOURCE (ANY or addresses); it starts the stanza"))
    found: dict[str, tuple[str, bytes]] = {}  # "encryption"/"HMAC" -> (option, key bytes)
    for what, pair in (("encryption", ("KEY", "KEY_BASE64")),
                       ("HMAC", ("HMAC_KEY", "HMAC_KEY_BASE64"))):
        present = [(name, text) for name in pair if (text := _set(section, name)) is not None]
        if len(present) == 2:
            errors.append(ValidationError(ref, present[1][0], f"{pair[0]} and {pair[1]} are "
                                          f"both set; keep one {what} key"))
        elif not present and what == "encryption":
            errors.append(ValidationError(ref, "KEY_BASE64", "is missing: the section needs an "
                                          "encryption key (run 'fwknopd-uci keys-init' or set "
                                          "KEY_BASE64 or KEY)"))
        for name, text in present:
            decoded = None if is_placeholder(text) else _key_bytes(name, text)
            if decoded:
                found[what] = (name, decoded)
    encryption, hmac_key = found.get("encryption"), found.get("HMAC")
    if encryption is not None and hmac_key is not None and encryption[1] == hmac_key[1]:
        errors.append(ValidationError(ref, hmac_key[0], "is the same as the encryption key; "
                                      "the two keys must differ"))
    return errors


def validate_package(pkg: UciPackage) -> list[ValidationError]:
    """Every problem the generator would refuse, in file order.

    Checks each option of the ``global``, ``network``, ``access`` and
    ``config`` sections with validate_option, each section with
    validate_section, and that there is at least one ``access`` section.
    """
    errors: list[ValidationError] = []
    for section in pkg.sections:
        ref = section_ref(pkg, section)
        for name, value in section.options.items():
            message = validate_option(section.type, name, value)
            if message is not None:
                errors.append(ValidationError(ref, name, message))
        errors.extend(validate_section(ref, section))
    if not pkg.sections_of("access"):
        errors.append(ValidationError("@access[0]", "SOURCE", "there is no access section; "
                                      "fwknopd needs at least one (SOURCE and keys)"))
    return errors
