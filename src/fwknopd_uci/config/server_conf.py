# fwknopd.conf: the reference's line syntax and the server-wide settings.
#
# Purpose: read fwknopd.conf exactly as fwknopd 2.x does (spa-protocol.md 7.1)
# into a frozen ServerConfig holding the effective value of every known
# variable (7.2), defaults filled in, plus typed properties for the daemon.
# The line reader here is shared with access.conf, which uses the same
# syntax (8.1).
#
# Strategy: bytes are split at LF only (fgets), each line is cut at its first
# NUL (a C string ends there) and decoded as UTF-8 with surrogateescape, so a
# key's exact bytes survive and no byte sequence can raise. Values are kept
# as the strings the file wrote; defaults and cross-variable checks are
# applied in one place (_build) so that command-line overrides
# (with_values) are validated by the same code as the file.
#
# Lines longer than fwknop's 1023-byte buffer: fgets would cut such a line
# into pieces and parse each piece as a line of its own. We skip an overlong
# comment line whole (with a warning) and refuse any other overlong line
# with a ConfigError, rather than silently use a truncated value.
#
# Bounds: a config file is opened only if it is a regular file (checked
# before the open, so no device is ever opened, and again on the open
# descriptor), without blocking (a FIFO swapped in cannot hang the daemon),
# and read up to MAX_FILE_BYTES + 1 bytes; larger is a ConfigError. Lines
# are split lazily, so a file of newlines costs no list of a million lines.
#
# Integers: every integer variable must be a whole decimal number. The
# reference's strtol would read "ten" as 0 (so a default or a range error)
# and "45s" as 45; we refuse both with a ConfigError instead.
#
# Invariants: parse_server_conf raises only ConfigError; every name in
# ServerConfig.values is a known variable; values are never None. No
# message quotes line text that may be secret (see errors.py).
#
# New variables of fwknopd-uci (nftables grant set inside firewall4):
#
# | Variable  | Default          | Meaning                                          |
# |-----------|------------------|--------------------------------------------------|
# | NFT_TABLE | `inet fw4`       | family and name of the table holding the set     |
# | NFT_CHAIN | `input`          | chain of that table that gets the accept rule    |
# | NFT_SET   | `fwknopd_allow4` | set of grants (ipv4_addr . inet_proto . port)    |

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Generic, TypeVar, overload

from .errors import ConfigError, add_warning, name_shown, shown
from .lists import c_strtol, parse_int

__all__ = ["SERVER_VARIABLES", "ConfigLine", "ServerConfig", "config_lines", "parse_server_conf",
           "read_config_file"]

# 7.1: fgets into a 1024-byte buffer, so 1023 bytes of text per line.
MAX_LINE_BYTES: Final = 1023
# A bound on what one config file may hold: real files are a few KiB, the
# shipped fwknopd.conf with all its comments about 20 KiB.
MAX_FILE_BYTES: Final = 1024 * 1024
_COMMENT_FIRST: Final = frozenset(b"#;\r\n\x00")  # 7.1: first character only
# Windows editors start a UTF-8 file with a byte order mark. fwknopd would
# read it as part of the first word (`\ufeffSOURCE` is unknown, so "Could
# not find valid SOURCE stanza"); we drop it.
_BOM: Final = b"\xef\xbb\xbf"
# open() flags: never block on a FIFO, never take a terminal as ours.
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_C_SPACE: Final = " \t\n\v\f\r"
_VALUE_END: Final = re.compile(r"[;\n\r]")
_WORD: Final = re.compile(r"[^ \t\n\v\f\r]+")  # sscanf %s: up to C whitespace
COMMAND_LINE: Final = "<command line>"
_T = TypeVar("_T")

_ACCESS = "{}, filter, {}, 1, FWKNOP_{}, 1"

# Every fwknopd.conf variable (7.2) with its default (None: unset), in -D order.
# The iptables, firewalld, NFQ, ipfw/pf and GPG names are accepted and kept so
# that existing files load, though fwknopd-uci does not act on them.
_DEFAULTS: Final[tuple[tuple[str, str | None], ...]] = (
    ("CONFIG_FILE", None), ("OVERRIDE_CONFIG", None),
    ("PCAP_INTF", "eth0"), ("PCAP_FILE", None), ("ENABLE_PCAP_PROMISC", "N"),
    ("PCAP_FILTER", "udp port 62201"), ("PCAP_DISPATCH_COUNT", "100"),
    ("PCAP_LOOP_SLEEP", "100000"), ("ENABLE_PCAP_ANY_DIRECTION", None),
    ("EXIT_AT_INTF_DOWN", "Y"), ("MAX_SNIFF_BYTES", "1500"),
    ("ENABLE_SPA_PACKET_AGING", "Y"), ("MAX_SPA_PACKET_AGE", "120"),
    ("ENABLE_DIGEST_PERSISTENCE", "Y"), ("RULES_CHECK_THRESHOLD", "20"),
    ("CMD_EXEC_TIMEOUT", None), ("ENABLE_SPA_OVER_HTTP", "N"), ("ALLOW_ANY_USER_AGENT", "N"),
    ("ENABLE_X_FORWARDED_FOR", "N"), ("ENABLE_TCP_SERVER", "N"), ("TCPSERV_PORT", "62201"),
    ("ENABLE_UDP_SERVER", "N"), ("UDPSERV_PORT", "62201"), ("UDPSERV_SELECT_TIMEOUT", "500000"),
    ("ENABLE_NFQ_CAPTURE", "N"), ("NFQ_INTERFACE", ""), ("NFQ_PORT", "62201"),
    ("NFQ_TABLE", "mangle"), ("NFQ_CHAIN", "FWKNOP_NFQ"), ("NFQ_QUEUE_NUMBER", "1"),
    ("NFQ_LOOP_SLEEP", "500000"), ("LOCALE", None),
    ("SYSLOG_IDENTITY", "fwknopd"), ("SYSLOG_FACILITY", "LOG_DAEMON"),
    ("ENABLE_DESTINATION_RULE", "N"), ("ENABLE_RULE_PREPEND", "N"), ("ENABLE_NAT_DNS", "Y"),
    ("ENABLE_IPT_FORWARDING", "N"), ("ENABLE_IPT_LOCAL_NAT", "N"), ("ENABLE_IPT_SNAT", "N"),
    ("SNAT_TRANSLATE_IP", None), ("ENABLE_IPT_OUTPUT", "N"),
    ("FLUSH_IPT_AT_INIT", "Y"), ("FLUSH_IPT_AT_EXIT", "Y"),
    ("IPT_INPUT_ACCESS", _ACCESS.format("ACCEPT", "INPUT", "INPUT")),
    ("IPT_OUTPUT_ACCESS", _ACCESS.format("ACCEPT", "OUTPUT", "OUTPUT")),
    ("IPT_FORWARD_ACCESS", _ACCESS.format("ACCEPT", "FORWARD", "FORWARD")),
    ("IPT_DNAT_ACCESS", "DNAT, nat, PREROUTING, 1, FWKNOP_PREROUTING, 1"),
    ("IPT_SNAT_ACCESS", "SNAT, nat, POSTROUTING, 1, FWKNOP_POSTROUTING, 1"),
    ("IPT_MASQUERADE_ACCESS", "MASQUERADE, nat, POSTROUTING, 1, FWKNOP_MASQUERADE, 1"),
    ("ENABLE_IPT_COMMENT_CHECK", "Y"),
    ("ENABLE_FIREWD_FORWARDING", "N"), ("ENABLE_FIREWD_LOCAL_NAT", "N"),
    ("ENABLE_FIREWD_SNAT", "N"), ("ENABLE_FIREWD_OUTPUT", "N"),
    ("FLUSH_FIREWD_AT_INIT", "Y"), ("FLUSH_FIREWD_AT_EXIT", "Y"),
    ("FIREWD_INPUT_ACCESS", _ACCESS.format("ACCEPT", "INPUT", "INPUT")),
    ("FIREWD_OUTPUT_ACCESS", _ACCESS.format("ACCEPT", "OUTPUT", "OUTPUT")),
    ("FIREWD_FORWARD_ACCESS", _ACCESS.format("ACCEPT", "FORWARD", "FORWARD")),
    ("FIREWD_DNAT_ACCESS", "DNAT, nat, PREROUTING, 1, FWKNOP_PREROUTING, 1"),
    ("FIREWD_SNAT_ACCESS", "SNAT, nat, POSTROUTING, 1, FWKNOP_POSTROUTING, 1"),
    ("FIREWD_MASQUERADE_ACCESS", "MASQUERADE, nat, POSTROUTING, 1, FWKNOP_MASQUERADE, 1"),
    ("ENABLE_FIREWD_COMMENT_CHECK", "Y"),
    ("IPFW_START_RULE_NUM", "10000"), ("IPFW_MAX_RULES", "65535"),
    ("IPFW_ACTIVE_SET_NUM", "1"), ("IPFW_EXPIRE_SET_NUM", "2"),
    ("IPFW_EXPIRE_PURGE_INTERVAL", "30"), ("IPFW_ADD_CHECK_STATE", "N"),
    ("PF_ANCHOR_NAME", "fwknop"), ("PF_EXPIRE_INTERVAL", "30"),
    ("NFT_TABLE", "inet fw4"), ("NFT_CHAIN", "input"), ("NFT_SET", "fwknopd_allow4"),
    ("FWKNOP_RUN_DIR", "/var/run/fwknop"), ("FWKNOP_CONF_DIR", "/etc/fwknop"),
    ("ACCESS_FILE", None), ("ACCESS_FOLDER", None),  # ACCESS_FILE: see _build
    ("FWKNOP_PID_FILE", None), ("DIGEST_FILE", None),  # derived from the run dir
    ("GPG_HOME_DIR", "/root/.gnupg"), ("GPG_EXE", "/usr/bin/gpg"), ("SUDO_EXE", "/usr/bin/sudo"),
    ("FIREWALL_EXE", "/usr/sbin/nft"), ("VERBOSE", None),
)
SERVER_VARIABLES: Final[tuple[str, ...]] = tuple(name for name, _ in _DEFAULTS)
_KNOWN: Final = frozenset(SERVER_VARIABLES)
_STATIC: Final = {name: value for name, value in _DEFAULTS if value is not None}

# 7.1: integers are range-checked at start-up, out of range is fatal. Ports:
# fwknopd allows up to 131071 and then wraps the value in htons(); we refuse.
# (openwrt/validate.py keeps its UCI ranges equal to these.)
_RANGES: Final = {
    "PCAP_DISPATCH_COUNT": (1, 8388608), "PCAP_LOOP_SLEEP": (1, 8388608),
    "MAX_SNIFF_BYTES": (1, 32768), "MAX_SPA_PACKET_AGE": (1, 100000),
    "RULES_CHECK_THRESHOLD": (0, 131071), "TCPSERV_PORT": (1, 65535),
    "UDPSERV_PORT": (1, 65535), "UDPSERV_SELECT_TIMEOUT": (1, 8388608),
}
# The integers fwknopd-uci does not use (NFQ, ipfw, pf, CMD_EXEC_TIMEOUT,
# VERBOSE) are checked the same way, but only have to fit a C int.
_INT_RANGE: Final = (-(2**31), 2**31 - 1)
_OTHER_INTEGERS: Final = (
    "CMD_EXEC_TIMEOUT", "NFQ_PORT", "NFQ_QUEUE_NUMBER", "NFQ_LOOP_SLEEP", "IPFW_START_RULE_NUM",
    "IPFW_MAX_RULES", "IPFW_ACTIVE_SET_NUM", "IPFW_EXPIRE_SET_NUM", "IPFW_EXPIRE_PURGE_INTERVAL",
    "PF_EXPIRE_INTERVAL", "VERBOSE")
_FACILITIES: Final = frozenset(["LOG_DAEMON", *(f"LOG_LOCAL{i}" for i in range(8))])
_NFT_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_EMBEDDED: Final = re.compile(r"\$([A-Z_]+)")  # 7.1: `$NAME` at the start of a value


@dataclass(frozen=True, slots=True)
class ConfigLine:
    """One `VAR value` line; ``value`` is None when the line has none."""

    number: int
    variable: str
    value: str | None


def _read_bounded(fd: int, limit: int) -> bytes:
    """At most ``limit`` + 1 bytes of ``fd`` (one more than allowed shows excess)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = os.read(fd, limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_config_file(path: str, warnings: list[str], what: str = "Config file") -> bytes:
    """Read a whole config file (bounded), warning about loose permissions.

    Only a regular file is opened (a device, FIFO or socket is refused
    before the open), the open does not block, and at most MAX_FILE_BYTES
    are accepted.

    Raises:
        ConfigError: the file is missing, not a regular file, too large or
            unreadable.
    """
    too_large = f"{what} is larger than {MAX_FILE_BYTES} bytes (1 MiB)"
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ConfigError(path, None, None, f"{what} is not a regular file")
        fd = os.open(path, _OPEN_FLAGS)
        try:
            info = os.fstat(fd)  # the file opened, should the path have changed
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(path, None, None, f"{what} is not a regular file")
            if info.st_size > MAX_FILE_BYTES:
                raise ConfigError(path, None, None, too_large)
            data = _read_bounded(fd, MAX_FILE_BYTES)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise ConfigError(path, None, None, f"{what} was not found") from None
    except (OSError, ValueError) as exc:  # ValueError: NUL or unencodable path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(path, None, None, f"cannot read {what}: {shown(reason)}") from None
    if len(data) > MAX_FILE_BYTES:  # grew after the fstat, or a /proc-like size of 0
        raise ConfigError(path, None, None, too_large)
    # 7.1: should be 0600 and owned by the running user; only a warning.
    if info.st_mode & 0o077:
        add_warning(warnings, f"[-] file: {shown(path)} permissions should only be user "
                              "read/write (0600, -rw-------)")
    if info.st_uid != os.geteuid():
        add_warning(warnings, f"[-] file: {shown(path)} (owner: {info.st_uid}) not owned by "
                              f"current effective user id: {os.geteuid()}")
    return data


def _raw_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(number, bytes) of each LF-terminated line, split lazily, BOM dropped."""
    start = len(_BOM) if data.startswith(_BOM) else 0
    number = 1
    while True:
        end = data.find(b"\n", start)
        if end < 0:
            yield number, data[start:]
            return
        yield number, data[start:end]
        start, number = end + 1, number + 1


def config_lines(path: str, data: bytes, warnings: list[str]) -> Iterator[ConfigLine]:
    """Yield the `VAR value` lines of a file in the syntax of 7.1 / 8.1.

    Column-1 comments (#, ;, CR, LF, NUL) and blank lines are skipped. The
    variable is the first whitespace-delimited word; the value is the rest
    after whitespace, cut at the first ``;``, CR or LF, trailing whitespace
    removed (sscanf ``"%s %[^;\\n\\r]"`` + chop_whitespace). A UTF-8 byte
    order mark at the start of ``data`` is ignored.

    Raises:
        ConfigError: a non-comment line longer than 1023 bytes.
    """
    for number, raw in _raw_lines(data):
        if len(raw) > MAX_LINE_BYTES:
            if raw[0] in _COMMENT_FIRST:
                add_warning(warnings, f"{shown(path)}:{number}: comment line longer than "
                                      f"{MAX_LINE_BYTES} bytes skipped whole")
                continue
            raise ConfigError(path, number, None, f"line is longer than {MAX_LINE_BYTES} bytes "
                              "(fwknopd would cut it into several lines)")
        raw = raw.split(b"\x00", 1)[0]  # a C string ends at the first NUL
        if not raw or raw[0] in _COMMENT_FIRST:
            continue
        text = raw.decode("utf-8", "surrogateescape")
        rest = text.lstrip(_C_SPACE)
        if not rest:
            # Difference: fwknopd's sscanf fails on a whitespace-only line
            # (fatal in access.conf); it carries nothing, so we skip it.
            continue
        word = _WORD.match(rest)
        cut = len(rest) if word is None else word.end()  # never None: rest starts non-space
        variable = rest[:cut]
        after = rest[cut:].lstrip(_C_SPACE)
        end = _VALUE_END.search(after)
        value = (after if end is None else after[:end.start()]).rstrip(_C_SPACE)
        yield ConfigLine(number, variable, value or None)


def _yes(value: str) -> bool:
    """7.1: booleans are `strncasecmp(value, "Y", 1) == 0`."""
    return value[:1] in ("y", "Y")


def _under(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}"


def _text(value: str | None) -> str:
    return value or ""


def _optional(value: str | None) -> str | None:
    return value


def _flag(value: str | None) -> bool:
    return _yes(value or "")


def _not_no(value: str | None) -> bool:
    return (value or "")[:1] not in ("n", "N")


def _number(value: str | None) -> int:
    return c_strtol(value or "") or 0


def _upper(value: str | None) -> str:
    return (value or "").upper()


class _View(Generic[_T]):
    """A read-only, typed attribute of ServerConfig computed from one variable."""

    def __init__(self, name: str, convert: Callable[[str | None], _T], doc: str) -> None:
        self.name = name
        self.convert = convert
        self.__doc__ = f"{name}: {doc}"

    @overload
    def __get__(self, config: None, owner: object = None) -> _View[_T]: ...

    @overload
    def __get__(self, config: ServerConfig, owner: object = None) -> _T: ...

    def __get__(self, config: ServerConfig | None, owner: object = None) -> _T | _View[_T]:
        if config is None:
            return self  # class access (help(), inspect)
        value = config.values.get(self.name)
        # A ServerConfig built by hand may lack defaults: fall back to them.
        return self.convert(value if value is not None else _STATIC.get(self.name))


@dataclass(frozen=True)
class ServerConfig:
    """The effective fwknopd.conf settings (spa-protocol.md 7.2).

    Attributes:
        values: every known variable that has a value, defaults filled in.
        path: the main config file.
        explicit: the names set by a file or a command-line override (the
            rest are defaults).
        pcap_file_mode: built for ``--pcap-file`` (packet aging default N).
    """

    values: Mapping[str, str] = field(hash=False)
    path: str
    explicit: frozenset[str] = frozenset()
    pcap_file_mode: bool = False
    lines: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False,
                                     hash=False)

    def with_values(self, **overrides: str) -> ServerConfig:
        """A copy with command-line overrides applied and validated again.

        Derived defaults follow the override (``-r DIR`` moves the default
        digest and PID files into DIR), as fwknopd fills defaults last.

        Raises:
            ConfigError: an unknown name or an invalid value.
        """
        for name in overrides:
            if name not in _KNOWN:
                raise ConfigError(COMMAND_LINE, None, name, "unknown configuration variable")
        explicit = {name: self.values[name] for name in self.explicit if name in self.values}
        explicit.update(overrides)
        lines = {k: v for k, v in self.lines.items() if k not in overrides}
        return _build(explicit, self.path, self.pcap_file_mode, lines)

    # Typed read-only views of `values` (descriptors: one line per variable).
    pcap_intf = _View("PCAP_INTF", _text, "The interface to sniff (-i).")
    pcap_filter = _View("PCAP_FILTER", _text, "The BPF filter text (-P).")
    pcap_file = _View("PCAP_FILE", _optional, "The capture file to read, or None.")
    enable_pcap_promisc = _View("ENABLE_PCAP_PROMISC", _flag, "Promiscuous sniffing (default N).")
    # 5.2: ENABLE_UDP_SERVER is tested against Y and N; _build refuses the rest.
    enable_udp_server = _View("ENABLE_UDP_SERVER", _flag, "UDP socket capture mode (-U).")
    udpserv_port = _View("UDPSERV_PORT", _number, "UDP server port, 1..65535.")
    udpserv_select_timeout = _View("UDPSERV_SELECT_TIMEOUT", _number, "select() timeout in us.")
    enable_tcp_server = _View("ENABLE_TCP_SERVER", _flag, "Dummy TCP acceptor (5.2).")
    tcpserv_port = _View("TCPSERV_PORT", _number, "TCP acceptor port, 1..65535.")
    max_sniff_bytes = _View("MAX_SNIFF_BYTES", _number, "Capture snap length.")
    enable_spa_packet_aging = _View("ENABLE_SPA_PACKET_AGING", _flag, "Timestamp window on (6.6).")
    max_spa_packet_age = _View("MAX_SPA_PACKET_AGE", _number, "Timestamp window, 1..100000 s.")
    enable_digest_persistence = _View("ENABLE_DIGEST_PERSISTENCE", _flag, "Replay cache on (6.2).")
    rules_check_threshold = _View("RULES_CHECK_THRESHOLD", _number, "Loops per full expiry scan.")
    digest_file = _View("DIGEST_FILE", _text, "Replay cache (default <run dir>/digest.cache).")
    run_dir = _View("FWKNOP_RUN_DIR", _text, "Run directory (PID and digest files).")
    conf_dir = _View("FWKNOP_CONF_DIR", _text, "Configuration directory.")
    pid_file = _View("FWKNOP_PID_FILE", _text, "PID file (default <run dir>/fwknopd.pid).")
    access_file = _View("ACCESS_FILE", _text, "access.conf (default <conf dir>/access.conf).")
    access_folder = _View("ACCESS_FOLDER", _optional, "Read instead of ACCESS_FILE; or None.")
    enable_spa_over_http = _View("ENABLE_SPA_OVER_HTTP", _flag, "SPA inside HTTP GET (5.4).")
    # 7.1: ALLOW_ANY_USER_AGENT is tested against "N": any other value allows.
    allow_any_user_agent = _View("ALLOW_ANY_USER_AGENT", _not_no, "Accept any HTTP User-Agent.")
    enable_x_forwarded_for = _View("ENABLE_X_FORWARDED_FOR", _flag, "Use X-Forwarded-For (5.4).")
    enable_ipt_forwarding = _View("ENABLE_IPT_FORWARDING", _flag, "NAT access types 2/4 allowed.")
    enable_ipt_local_nat = _View("ENABLE_IPT_LOCAL_NAT", _flag, "Local NAT types 5/6 allowed.")
    enable_nat_dns = _View("ENABLE_NAT_DNS", _flag, "Hostnames allowed in NAT requests.")
    enable_destination_rule = _View("ENABLE_DESTINATION_RULE", _flag, "Packet dst in rules.")
    exit_at_intf_down = _View("EXIT_AT_INTF_DOWN", _flag, "Exit when the device goes.")
    syslog_identity = _View("SYSLOG_IDENTITY", _text, "Syslog ident (default fwknopd).")
    syslog_facility = _View("SYSLOG_FACILITY", _upper, "LOG_DAEMON or LOG_LOCAL0..7.")
    nft_chain = _View("NFT_CHAIN", _text, "Chain of NFT_TABLE that gets the accept rule.")
    nft_set = _View("NFT_SET", _text, "Named set holding the grants.")

    @property
    def verbose(self) -> int:
        """VERBOSE as a number added to the -v count (never negative)."""
        return max(0, c_strtol(self.values.get("VERBOSE", "")) or 0)

    @property
    def nft_table(self) -> tuple[str, str]:
        """NFT_TABLE as ``(family, name)``, e.g. ``("inet", "fw4")``."""
        family, name = self.values.get("NFT_TABLE", _STATIC["NFT_TABLE"]).split()
        return family, name


def _fail(name: str, lines: Mapping[str, int], path: str, message: str) -> ConfigError:
    if name in lines:
        return ConfigError(path, lines[name], name, message)
    return ConfigError(COMMAND_LINE, None, name, message)


def _build(explicit: Mapping[str, str], path: str, pcap_file_mode: bool,
           lines: Mapping[str, int]) -> ServerConfig:
    """Fill in defaults and run the start-up checks of 7.1 / 5.2."""
    values = dict(_STATIC)
    values["CONFIG_FILE"] = path
    values.update(explicit)
    conf_dir, run_dir = values["FWKNOP_CONF_DIR"], values["FWKNOP_RUN_DIR"]
    values.setdefault("ACCESS_FILE", _under(conf_dir, "access.conf"))
    values.setdefault("DIGEST_FILE", _under(run_dir, "digest.cache"))
    values.setdefault("FWKNOP_PID_FILE", _under(run_dir, "fwknopd.pid"))
    if "ENABLE_SPA_PACKET_AGING" not in explicit and (pcap_file_mode or "PCAP_FILE" in explicit):
        values["ENABLE_SPA_PACKET_AGING"] = "N"  # 6.6: aging off when reading a pcap file
    checks = [*_RANGES.items(), *((name, _INT_RANGE) for name in _OTHER_INTEGERS)]
    for name, (low, high) in checks:
        if name not in values:
            continue  # an unset optional integer (CMD_EXEC_TIMEOUT, VERBOSE)
        number = parse_int(values[name])
        if number is None:
            # 7.1 / 1.7: fwknopd's strtol would read "ten" as 0 (then a range
            # error or a silent 0) and "60s" as 60; we refuse both. The value
            # is not quoted: it is not known to be harmless.
            raise _fail(name, lines, path, f"var {name} value is not a whole number "
                        f"(range {low}-{high})")
        if not low <= number <= high:
            # Only digits and a sign here, so the value may be quoted.
            raise _fail(name, lines, path, f"var {name} value '{values[name]}' not in the "
                        f"range {low}-{high}")
    if values["ENABLE_UDP_SERVER"][:1] not in ("y", "Y", "n", "N"):
        # 5.2: neither Y nor N leaves no capture mode in a pcap build.
        raise _fail("ENABLE_UDP_SERVER", lines, path,
                    "No available capture mode specified. Aborting.")
    # The invalid values below are not quoted (they are not known to be
    # harmless); the file, line and variable point at them.
    if values["SYSLOG_FACILITY"].upper() not in _FACILITIES:
        raise _fail("SYSLOG_FACILITY", lines, path, "Invalid SYSLOG_FACILITY setting "
                    "(LOG_DAEMON or LOG_LOCAL0..7)")
    table = values["NFT_TABLE"].split()
    if len(table) != 2 or table[0] not in ("ip", "inet") or not _NFT_NAME.fullmatch(table[1]):
        raise _fail("NFT_TABLE", lines, path, "the value is not '<ip|inet> <table name>', "
                    "e.g. 'inet fw4'")
    for name in ("NFT_CHAIN", "NFT_SET"):
        if not _NFT_NAME.fullmatch(values[name]):
            raise _fail(name, lines, path, "the value is not an nftables name "
                        "(letters, digits, '_'; at most 64)")
    return ServerConfig(values=MappingProxyType(values), path=path,
                        explicit=frozenset(explicit), pcap_file_mode=pcap_file_mode,
                        lines=MappingProxyType(dict(lines)))


def _expand(value: str, explicit: Mapping[str, str]) -> str | None:
    """7.1: `$NAME...` -> NAME's value so far + the rest; None if NAME has none."""
    if not value.startswith("$"):
        return value
    match = _EMBEDDED.match(value)
    if match is None or match.group(1) not in explicit:
        return None
    return explicit[match.group(1)] + value[match.end():]


def _bad_reference(value: str) -> str:
    """Why `$...` could not be expanded, naming the reference only if it is known."""
    match = _EMBEDDED.match(value)
    if match is None:
        return "'$' is not followed by a variable name"
    if match.group(1) in _KNOWN:  # a known name is a constant, safe to quote
        return f"${match.group(1)} has no value earlier in the file"
    return "it refers to an unknown variable"


def parse_server_conf(path: str | Path, *,
                      pcap_file_mode: bool = False) -> tuple[ServerConfig, list[str]]:
    """Parse fwknopd.conf (spa-protocol.md 7.1, 7.2).

    Args:
        path: the file (fwknopd's ``-c``).
        pcap_file_mode: reading ``--pcap-file``: ENABLE_SPA_PACKET_AGING then
            defaults to N unless the file sets it (6.6).

    Returns:
        The config and the warnings (unknown variables, lines without a
        value, bad ``$VAR`` references, loose file permissions).

    Raises:
        ConfigError: missing/unreadable/oversized file, an overlong line, an
            integer that is not a whole number or is out of range, an invalid
            ENABLE_UDP_SERVER, SYSLOG_FACILITY or NFT_*. Its ``warnings``
            holds the warnings collected before it.
    """
    name = os.fspath(path)
    warnings: list[str] = []
    try:
        return _parse(name, pcap_file_mode, warnings), warnings
    except ConfigError as exc:
        exc.warnings = (*warnings, *exc.warnings)  # what led up to it, for the daemon
        raise


def _parse(name: str, pcap_file_mode: bool, warnings: list[str]) -> ServerConfig:
    data = read_config_file(name, warnings)
    explicit: dict[str, str] = {}
    lines: dict[str, int] = {}
    where = shown(name)
    for line in config_lines(name, data, warnings):
        # 7.1: names are exact and case-sensitive, and no ':' is stripped here.
        # A first word is quoted only if it looks like a name (errors.py).
        if line.value is None or line.variable not in _KNOWN:
            word = f"'{line.variable}'" if name_shown(line.variable) else None
            at = f"{where} at line {line.number}"
            if line.value is None:
                add_warning(warnings, f"[*] Invalid config file entry in {at}: " + (
                    f"no value for {word}" if word else "an unparseable line (one word and no "
                    "value; the word is not shown, it may be a key)"))
            else:
                add_warning(warnings, f"[*] Ignoring unknown configuration parameter: {word} "
                            f"in {at}" if word else f"[*] Ignoring an unknown configuration "
                            f"parameter in {at} (not shown: it does not look like a variable "
                            "name)")
            continue
        value = _expand(line.value, explicit)
        if value is None:
            add_warning(warnings, f"[*] Invalid embedded variable in: {line.variable} "
                                  f"({where} line {line.number}): {_bad_reference(line.value)}")
            continue
        explicit[line.variable] = value  # 7.1: later lines override earlier ones
        lines[line.variable] = line.number
    return _build(explicit, name, pcap_file_mode, lines)
