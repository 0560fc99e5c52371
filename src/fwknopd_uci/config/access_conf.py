# access.conf: the access stanzas, with %include, %include_folder and
# %include_keys (spa-protocol.md 8).
#
# Purpose: turn access.conf into frozen AccessStanza values in file order,
# refusing what fwknopd refuses at start-up and warning where it warns, so
# that an existing fwknopd access.conf means the same thing here.
#
# Strategy: one recursive walk over the files. Each file keeps its own
# "current stanza" (a %include in the middle of a stanza does not end it;
# lines of the included file before its first SOURCE are ignored), as in
# fwknopd's parse_access_file. A variable is checked at its line (base64,
# __CHANGEME__, ranges, names) and a stanza as a whole when it is closed: at
# the next SOURCE of the same file or at the end of that file (8.1,
# acc_data_is_valid). Stanzas are numbered from 1 over the kept ones.
#
# GPG is not supported by fwknopd-uci: a stanza with only GPG keys is a
# ConfigError; GPG_* lines next to a Rijndael key are ignored with a warning.
#
# Bounds: recursion by the include depth (3); work and memory by MAX_FILES,
# MAX_TREE_BYTES (all files read for one access.conf, counted each time
# they are read), MAX_STANZAS and MAX_FOLDER_ENTRIES; each file by
# MAX_FILE_BYTES (server_conf.read_config_file).
#
# Secrets: no message quotes text from a line unless it is known not to be
# secret (errors.py): a first word only if it looks like a name, a stanza's
# SOURCE only once it parses as an address list, a path only if it exists,
# a number only if it is all digits. Values of KEY, KEY_BASE64, HMAC_KEY,
# HMAC_KEY_BASE64 and GPG_*_PW are never quoted, nor any invalid value.
#
# Invariants: parse_access_conf raises only ConfigError; every kept stanza
# has a non-empty key; keys never appear in a repr or a message.

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import AddressValueError, IPv4Address
from pathlib import Path
from types import MappingProxyType
from typing import Final, TypeVar

from ..spa import ENCRYPTION_MODES, HMAC_TYPES, StanzaKeys, b64_decode_lenient
from .errors import DIRECTIVES, ConfigError, add_warning, name_shown, path_shown, shown
from .lists import AddressList, parse_address_list, parse_expire_date, parse_int, parse_port_list
from .server_conf import ConfigLine, ServerConfig, config_lines, read_config_file

__all__ = ["ACCESS_VARIABLES", "SECRET_VARIABLES", "AccessStanza", "parse_access_conf"]

MAX_INCLUDE_DEPTH: Final = 3  # 8.1: "Refusing to go deeper than 3 levels"
MAX_FILES: Final = 256  # bound on files read for one access.conf (includes multiply)
# Bound on the bytes of all those files together: four full-size files.
MAX_TREE_BYTES: Final = 4 * 1024 * 1024
# Bound on stanzas (about 2.5 KB of memory each): every packet is tried
# against the stanzas in turn, so thousands are already slow to serve.
MAX_STANZAS: Final = 4096
MAX_FOLDER_ENTRIES: Final = 4096  # bound on the names listed in one folder
_MAX_TIMEOUT: Final = 8388608  # 6.4: FW_ACCESS_TIMEOUT / MAX_FW_TIMEOUT 0..2<<22
_CMD_CYCLE_BUFSIZE: Final = 256  # 8.1: each CMD_CYCLE command < 256 chars
_MAX_KEY_LEN: Final = 32  # 2.3: longer passphrases fail for every packet

#: Variables whose values -D never prints (8.3, 2.9). The dump and the
#: messages go further and hide every name holding KEY or PW
#: (errors.is_secret_name).
SECRET_VARIABLES: Final = ("KEY", "KEY_BASE64", "HMAC_KEY", "HMAC_KEY_BASE64", "GPG_DECRYPT_PW")
_GPG: Final = ("GPG_HOME_DIR", "GPG_EXE", "GPG_DECRYPT_ID", "GPG_DECRYPT_PW", "GPG_ALLOW_NO_PW",
               "GPG_REQUIRE_SIG", "GPG_DISABLE_SIG", "GPG_IGNORE_SIG_VERIFY_ERROR",
               "GPG_REMOTE_ID", "GPG_FINGERPRINT_ID")
#: Every access.conf variable of 8.3, in -D order.
ACCESS_VARIABLES: Final = (
    "SOURCE", "DESTINATION", "OPEN_PORTS", "RESTRICT_PORTS", "KEY", "KEY_BASE64", "HMAC_KEY",
    "HMAC_KEY_BASE64", "HMAC_DIGEST_TYPE", "ENCRYPTION_MODE", "FW_ACCESS_TIMEOUT",
    "MAX_FW_TIMEOUT", "ENABLE_CMD_EXEC", "ENABLE_CMD_SUDO_EXEC", "CMD_SUDO_EXEC_USER",
    "CMD_SUDO_EXEC_GROUP", "CMD_EXEC_USER", "CMD_EXEC_GROUP", "CMD_CYCLE_OPEN",
    "CMD_CYCLE_CLOSE", "CMD_CYCLE_TIMER", "REQUIRE_USERNAME", "REQUIRE_SOURCE_ADDRESS",
    "REQUIRE_SOURCE", "FORCE_NAT", "FORCE_SNAT", "FORCE_MASQUERADE", "FORWARD_ALL",
    "DISABLE_DNAT", "ACCESS_EXPIRE", "ACCESS_EXPIRE_EPOCH", *_GPG)
_KNOWN: Final = frozenset(ACCESS_VARIABLES)
# 8.1: what a %include_keys file may set.
_KEY_FILE_VARIABLES: Final = frozenset({"KEY", "KEY_BASE64", "HMAC_KEY", "HMAC_KEY_BASE64",
                                        "GPG_DECRYPT_ID", "GPG_DECRYPT_PW", "GPG_REMOTE_ID",
                                        "GPG_FINGERPRINT_ID"})
_B64_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
# 6.4 / 8.3: the integer variables of a stanza and their ranges.
_INTEGERS: Final = {"FW_ACCESS_TIMEOUT": (0, _MAX_TIMEOUT), "MAX_FW_TIMEOUT": (0, _MAX_TIMEOUT),
                    "CMD_CYCLE_TIMER": (0, _MAX_TIMEOUT), "ACCESS_EXPIRE_EPOCH": (0, 2**63 - 1)}
_UNPARSEABLE: Final = ("an unparseable line (one word and no value; the word is not shown, it "
                       "may be a key)")
_T = TypeVar("_T")


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class AccessStanza:
    """One access.conf stanza (spa-protocol.md 8.3), ready for the pipeline.

    ``number`` is 1-based in file order, included files counted in place.
    ``keys`` is None only for GPG-only stanzas, which parse_access_conf
    refuses, so it is never None in parsed results. ``variables`` holds
    every variable as written (secrets included: -D masks them). Neither
    ``keys`` nor ``variables`` appears in the repr.
    """

    number: int
    source: AddressList
    destination: AddressList | None = None
    open_ports: tuple[tuple[str, int], ...] | None = None
    restrict_ports: tuple[tuple[str, int], ...] | None = None
    keys: StanzaKeys | None = field(default=None, repr=False)
    fw_access_timeout: int = 30
    max_fw_timeout: int = 300
    require_username: str | None = None
    require_source_address: bool = False
    enable_cmd_exec: bool = False
    cmd_cycle_open: str | None = None
    access_expire: int | None = None
    force_nat: str | None = None
    variables: Mapping[str, str] = field(default_factory=_empty, repr=False, hash=False)
    cmd_cycle_close: str | None = None
    cmd_cycle_timer: int = 0
    cmd_exec_user: str | None = None
    cmd_exec_group: str | None = None
    enable_cmd_sudo_exec: bool = False
    cmd_sudo_exec_user: str | None = None
    cmd_sudo_exec_group: str | None = None
    force_snat: str | None = None
    force_masquerade: bool = False
    forward_all: bool = False
    disable_dnat: bool = False
    path: str = ""  # the file and line of its SOURCE, for messages
    line: int = 0


def _yes(value: str | None) -> bool:
    return value is not None and value[:1] in ("y", "Y")  # 8.3: strncasecmp(v, "Y", 1)


def _key_bytes(st: _Stanza, name: str, value: str) -> bytes:
    """2.9: KEY/HMAC_KEY are the literal bytes; *_BASE64 is fwknop base64."""
    if not name.endswith("_BASE64"):
        return value.encode("utf-8", "surrogateescape")
    if not set(value) <= _B64_CHARS:  # 2.9: is_base64(); a space fails
        raise st.error(name, f"{name} argument doesn't look like base64-encoded data")
    try:
        return b64_decode_lenient(value)
    except ValueError:  # not expected after the character check; its text may quote the key
        raise st.error(name, f"{name} argument is not valid base64") from None


def _parsed(st: _Stanza, name: str, parse: Callable[[str], _T]) -> _T | None:
    """A list variable of the stanza parsed, None if unset; bad entry fatal (8.1)."""
    if name not in st.variables:
        return None
    try:
        return parse(st.variables[name])
    except ValueError as exc:  # the list parsers never quote their input
        raise st.error(name, f"Fatal invalid {name} in access stanza: {shown(str(exc))}") from None


def _account_exists(name: str, *, group: bool) -> bool:
    # 8.3: fwknopd looks CMD_EXEC_GROUP up with getpwnam (as a user); we also
    # accept a real group of that name.
    lookups = (pwd.getpwnam, grp.getgrnam) if group else (pwd.getpwnam,)
    for lookup in lookups:
        try:
            lookup(name)
            return True
        except (KeyError, ValueError, UnicodeError, OverflowError):
            continue
    return False


def _name(line: ConfigLine) -> str:
    """8.1: the variable with everything from its last ':' removed."""
    name = line.variable
    return name[:name.rindex(":")] if ":" in name else name


def _label(line: ConfigLine, name: str) -> str | None:
    """``name`` (the variable of ``line``) if it may appear in a message.

    A known variable or directive is a constant; any other name only if the
    whole first word looks like a name, so that a key containing ':' cannot
    leak through the part before its last ':'.
    """
    if name in _KNOWN or name in DIRECTIVES or name_shown(line.variable):
        return name
    return None


class _Stanza:
    """A stanza being read: the lines as written and the bytes of its keys."""

    def __init__(self, path: str, line: int, source: str) -> None:
        self.path, self.line = path, line
        self.variables: dict[str, str] = {"SOURCE": source}
        self.where: dict[str, tuple[str, int]] = {"SOURCE": (path, line)}
        self.key: bytes | None = None
        self.hmac_key: bytes | None = None
        self.hmac_var = "HMAC_KEY"
        self.include_keys = False
        self.numbers: dict[str, int] = {}
        self.expire: int | None = None
        self.require_source: str | None = None
        self.built: AccessStanza | None = None  # set by close() unless dropped

    def error(self, name: str, message: str) -> ConfigError:
        path, line = self.where.get(name, (self.path, self.line))
        return ConfigError(path, line, name, message)

    @property
    def source(self) -> str:
        """The SOURCE for messages: quoted only once it parses as an address list."""
        text = self.variables["SOURCE"]
        try:
            parse_address_list(text)
        except ValueError:
            return f"(invalid SOURCE at {shown(self.path)} line {self.line})"
        return shown(text)


class _Parser:
    def __init__(self, server: ServerConfig | None) -> None:
        self.server = server
        self.warnings: list[str] = []
        self.stanzas: list[_Stanza] = []
        self.files = 0
        self.total_bytes = 0

    def warn(self, text: str) -> None:
        add_warning(self.warnings, text)

    def count_file(self, path: str) -> None:
        self.files += 1
        if self.files > MAX_FILES:
            raise ConfigError(path, None, None, f"more than {MAX_FILES} files included")

    def count_bytes(self, path: str, data: bytes) -> None:
        self.total_bytes += len(data)
        if self.total_bytes > MAX_TREE_BYTES:
            raise ConfigError(path, None, None, "the access files read so far (includes "
                              f"counted each time) are larger than {MAX_TREE_BYTES} bytes")

    def read(self, path: str, what: str) -> bytes:
        self.count_file(path)
        data = read_config_file(path, self.warnings, what)
        self.count_bytes(path, data)
        return data

    def parse_file(self, path: str, depth: int) -> None:
        self.parse_lines(path, self.read(path, "Access file"), depth)

    def include(self, path: str, number: int, name: str, target: str, depth: int) -> None:
        """Parse ``target`` one level deeper, for a %include line at ``path:number``."""
        if depth + 1 > MAX_INCLUDE_DEPTH:
            raise ConfigError(path, number, name, "Refusing to go deeper than "
                              f"{MAX_INCLUDE_DEPTH} levels. Lost in Limbo: {path_shown(target)}")
        try:
            data = self.read(target, "Access file")
        except ConfigError as exc:  # point at the %include line, not the target
            raise ConfigError(path, number, name,
                              f"{exc.message}: {path_shown(target)}") from None
        self.parse_lines(target, data, depth + 1)

    def parse_lines(self, path: str, data: bytes, depth: int) -> None:
        current: _Stanza | None = None
        for line in config_lines(path, data, self.warnings):
            name = _name(line)
            value = line.value
            if value is None:
                # 8.1: a line with a variable but no value is fatal here. A
                # word alone on a line is often a key: name it only if it
                # looks like a name.
                label = _label(line, name)
                raise ConfigError(path, line.number, label, "Invalid access file entry: "
                                  + ("the variable has no value" if label else _UNPARSEABLE))
            if name == "%include":
                self.include(path, line.number, name, value, depth)
            elif name == "%include_folder":
                self.parse_folder(value, depth, (path, line.number))
            elif name == "SOURCE":
                if current is not None:
                    self.close(current)
                if len(self.stanzas) >= MAX_STANZAS:
                    raise ConfigError(path, line.number, name,
                                      f"more than {MAX_STANZAS} access stanzas")
                current = _Stanza(path, line.number, value)
                self.stanzas.append(current)
            elif current is None:
                continue  # 8.1: lines before the first SOURCE are ignored
            elif name == "%include_keys":
                self.include_keys(current, value, path, line.number)
            else:
                self.set(current, line, name, value)
        if current is not None:
            self.close(current)

    def parse_folder(self, folder: str, depth: int, origin: tuple[str, int] | None) -> None:
        """8.1 %include_folder / ACCESS_FOLDER: every file whose last
        extension starts with ``.conf``. Sorted by name (fwknopd uses readdir
        order, which no user can rely on)."""
        try:
            names = self.list_folder(folder)
        except (OSError, ValueError) as exc:
            path, number = origin if origin is not None else (folder, None)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(path, number, "%include_folder" if origin else None,
                              f"Access folder: {path_shown(folder)} could not be opened: "
                              f"{shown(reason)}") from None
        for entry in names:
            dot = entry.rfind(".")
            if dot < 0 or not entry[dot:].startswith(".conf"):
                continue
            target = os.path.join(folder, entry)
            try:
                regular = stat.S_ISREG(os.stat(target).st_mode)
            except (OSError, ValueError):
                regular = False
            if not regular:
                self.warn(f"Skipping {path_shown(target)}: not a regular file")
            elif origin is None:
                self.parse_file(target, depth + 1)
            else:
                self.include(origin[0], origin[1], "%include_folder", target, depth)

    @staticmethod
    def list_folder(folder: str) -> list[str]:
        """The sorted names in ``folder``; more than MAX_FOLDER_ENTRIES is refused."""
        names: list[str] = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if len(names) >= MAX_FOLDER_ENTRIES:
                    raise ValueError(f"more than {MAX_FOLDER_ENTRIES} entries")
                names.append(entry.name)
        return sorted(names)

    def include_keys(self, stanza: _Stanza, target: str, path: str, number: int) -> None:
        """8.1 %include_keys: only key variables; an unreadable file leaves
        the stanza without those keys (dropped at close if it has none)."""
        stanza.include_keys = True
        self.count_file(target)  # the bounds of the whole tree stay fatal
        try:
            data = read_config_file(target, self.warnings, "Key file")
        except ConfigError as exc:
            self.warn(f"Could not include key file {path_shown(target)} ({shown(path)} line "
                      f"{number}) for access stanza source: '{stanza.source}': {exc.message}")
            return
        self.count_bytes(target, data)
        for line in config_lines(target, data, self.warnings):
            name = _name(line)
            label = _label(line, name)
            if line.value is None:
                # A key file is where a key alone on a line is most likely.
                raise ConfigError(target, line.number, label, "Invalid access file entry: "
                                  + ("the variable has no value" if label else _UNPARSEABLE))
            if name not in _KEY_FILE_VARIABLES:
                where = f"key file {shown(target)} at line {line.number}"
                self.warn(f"Ignoring invalid entry: '{label}' in {where}" if label
                          else f"Ignoring an invalid entry in {where} (not shown: it does not "
                               "look like a variable name)")
                continue
            self.set(stanza, line, name, line.value, target)

    def set(self, st: _Stanza, line: ConfigLine, name: str, value: str,
            path: str | None = None) -> None:
        """Record one variable, with the checks fwknopd makes at the line.

        ``path`` is the file of ``line`` when it is not the stanza's own.
        """
        path = st.path if path is None else path
        if name not in _KNOWN:
            label = _label(line, name)
            where = f"{shown(path)} at line {line.number}"
            self.warn(f"[*] Ignoring unknown access parameter: '{label}' in {where}" if label
                      else f"[*] Ignoring an unknown access parameter in {where} (not shown: "
                           "it does not look like a variable name)")
            return
        st.variables[name] = value  # 8.1: a later line overrides an earlier one
        st.where[name] = (path, line.number)
        # The value is quoted in none of the errors below: a bad value is not
        # known to be harmless (a key pasted onto the wrong line, say).
        if name in SECRET_VARIABLES and value.upper() == "__CHANGEME__":
            # 2.9: the shipped placeholder must never become a real key.
            raise st.error(name, f"{name} value is not properly set in stanza source "
                                 f"'{st.source}' (still __CHANGEME__)")
        if name in ("KEY", "KEY_BASE64"):
            st.key = _key_bytes(st, name, value)
        elif name in ("HMAC_KEY", "HMAC_KEY_BASE64"):
            st.hmac_key, st.hmac_var = _key_bytes(st, name, value), name
        elif name == "HMAC_DIGEST_TYPE" and value.lower() not in HMAC_TYPES:
            raise st.error(name, "HMAC_DIGEST_TYPE argument must be one of "
                                 "{md5,sha1,sha256,sha384,sha512,sha3_256,sha3_512}")
        elif name == "ENCRYPTION_MODE" and value.lower() not in (*ENCRYPTION_MODES, "asymmetric"):
            raise st.error(name, "Unrecognized ENCRYPTION_MODE, use "
                                 "{CBC,ECB,CFB,OFB,CTR,legacy,Asymmetric}")
        elif name in _INTEGERS:
            self.set_number(st, name, value)
        elif name in ("REQUIRE_SOURCE_ADDRESS", "REQUIRE_SOURCE"):
            st.require_source = value  # 6.7: synonyms, the later line wins
        elif name == "ACCESS_EXPIRE":
            st.expire = parse_expire_date(value)
            if st.expire is None:
                raise st.error(name, "invalid date value (need MM/DD/YYYY) for access stanza "
                                     "expiration time")
        elif name in ("CMD_EXEC_USER", "CMD_EXEC_GROUP", "CMD_SUDO_EXEC_USER",
                      "CMD_SUDO_EXEC_GROUP"):
            if not _account_exists(value, group=name.endswith("GROUP")):
                raise st.error(name, f"Unable to determine the ID for {name}: Not a user on "
                                     "this system")
        elif name in ("FORCE_NAT", "FORCE_SNAT"):
            self.check_nat(st, name, value)

    @staticmethod
    def set_number(st: _Stanza, name: str, value: str) -> None:
        """An integer variable: a whole number in its range, else fatal."""
        low, high = _INTEGERS[name]
        number = parse_int(value)
        if number is None:
            # 1.7: fwknopd's strtol reads "ten" as 0, which then means the
            # default (FW_ACCESS_TIMEOUT 30 s) or an expiry in 1970, and
            # "45s" as 45. A typo must not silently change access: refuse.
            raise st.error(name, f"var {name} value is not a whole number (range {low}-{high})")
        if not low <= number <= high:
            # All digits (and a sign) here, so the value may be quoted.
            raise st.error(name, f"var {name} value '{value}' not in the range {low}-{high}")
        if name == "ACCESS_EXPIRE_EPOCH":
            st.expire = number
        else:
            st.numbers[name] = number

    def check_nat(self, st: _Stanza, name: str, value: str) -> None:
        """8.3: FORCE_NAT `<IP> <PORT>`, FORCE_SNAT `<IP>`; both need NAT on."""
        parts = value.split()
        need = 2 if name == "FORCE_NAT" else 1
        try:
            IPv4Address(parts[0] if len(parts) >= need else "")
            port_ok = need == 1 or (parts[1].isascii() and parts[1].isdigit()
                                    and int(parts[1]) <= 65535)
        except AddressValueError:
            port_ok = False
        if not port_ok:
            shape = "<IP> <PORT>" if need == 2 else "<IP>"
            raise st.error(name, f"Fatal: invalid {name} arg, need {shape}")
        server = self.server
        if server is not None and not (server.enable_ipt_forwarding
                                       or server.enable_ipt_local_nat):
            raise st.error(name, f"{name} requires either ENABLE_IPT_FORWARDING or "
                                 "ENABLE_IPT_LOCAL_NAT in fwknopd.conf")

    def close(self, st: _Stanza) -> None:
        """The whole-stanza checks of fwknopd's acc_data_is_valid (8.1)."""
        v = st.variables
        mode = v.get("ENCRYPTION_MODE", "cbc").lower()
        gpg_key = bool(v.get("GPG_DECRYPT_PW")) or _yes(v.get("GPG_ALLOW_NO_PW"))
        if not st.key:
            if gpg_key or mode == "asymmetric":
                raise st.error("SOURCE", f"access stanza source '{st.source}' uses GPG, which "
                                         "fwknopd-uci does not support (yet); give it a KEY")
            if st.include_keys:
                self.warn(f"Access stanza source: '{st.source}' ({shown(st.path)} "
                          f"line {st.line}) has no usable key after %include_keys; "
                          "stanza dropped")
                return
            raise st.error("KEY", f"No keys found for access stanza source: '{st.source}'")
        key = st.key
        if mode == "legacy" and len(key) > 16:
            self.warn("Warning: truncating encryption key in legacy mode to 16 bytes "
                      f"for access stanza source: '{st.source}'")
            key = key[:16]
        elif len(key) > _MAX_KEY_LEN:
            self.warn(f"Warning: the key of access stanza source: '{st.source}' is "
                      f"{len(key)} bytes; keys over {_MAX_KEY_LEN} bytes make every "
                      "SPA packet fail (Invalid key length)")
        hmac_key = st.hmac_key or None  # an empty HMAC key means no HMAC (3.5)
        if hmac_key == key:
            raise st.error(st.hmac_var, "The encryption passphrase and HMAC key should not be "
                                        f"identical for access stanza source: '{st.source}'")
        force_nat = v.get("FORCE_NAT")
        force_masquerade = _yes(v.get("FORCE_MASQUERADE"))
        if (v.get("FORCE_SNAT") or force_masquerade) and force_nat is None:
            if not _yes(v.get("FORWARD_ALL")):
                raise st.error("FORCE_SNAT" if "FORCE_SNAT" in v else "FORCE_MASQUERADE",
                               "FORCE_SNAT/FORCE_MASQUERADE requires either FORCE_NAT or "
                               f"FORWARD_ALL: '{st.source}'")
            force_nat = "0.0.0.0 0"  # 8.3: FORWARD_ALL implies FORCE_NAT 0.0.0.0 0
        self.check_cmd_cycle(st)
        if not _yes(st.require_source):
            self.warn("Warning: REQUIRE_SOURCE_ADDRESS not enabled for access "
                      f"stanza source: '{st.source}'")
        ignored = [name for name in _GPG if name in v]
        if ignored:
            self.warn(f"Ignoring {', '.join(ignored)} in access stanza source: "
                      f"'{st.source}': GPG is not supported by fwknopd-uci (yet)")
        if mode == "asymmetric":
            self.warn(f"ENCRYPTION_MODE Asymmetric (GPG) is not supported; access "
                      f"stanza source: '{st.source}' uses its KEY in CBC mode")
            mode = "cbc"
        source = _parsed(st, "SOURCE", parse_address_list)
        if source is None:  # not reached: a stanza starts with its SOURCE line
            raise st.error("SOURCE", "missing SOURCE")
        try:
            keys = StanzaKeys(key, hmac_key, v.get("HMAC_DIGEST_TYPE", "sha256").lower(), mode)
        except ValueError:  # not reached: both names were checked at their lines
            raise st.error("KEY", "invalid HMAC_DIGEST_TYPE or ENCRYPTION_MODE for access "
                                  f"stanza source: '{st.source}'") from None
        timeout, cap = st.numbers.get("FW_ACCESS_TIMEOUT", 0), st.numbers.get("MAX_FW_TIMEOUT", 0)
        timeout, cap = timeout if timeout >= 1 else 30, cap if cap >= 1 else 300  # 6.4
        if timeout > cap:
            # 6.4: MAX_FW_TIMEOUT caps only client timeouts, not this one.
            self.warn(f"Warning: FW_ACCESS_TIMEOUT {timeout} is greater than "
                      f"MAX_FW_TIMEOUT {cap} for access stanza source: "
                      f"'{st.source}' (MAX_FW_TIMEOUT caps only client timeouts)")
        st.built = AccessStanza(
            number=0, source=source, destination=_parsed(st, "DESTINATION", parse_address_list),
            open_ports=_parsed(st, "OPEN_PORTS", parse_port_list),
            restrict_ports=_parsed(st, "RESTRICT_PORTS", parse_port_list), keys=keys,
            fw_access_timeout=timeout, max_fw_timeout=cap,
            require_username=v.get("REQUIRE_USERNAME"),
            require_source_address=_yes(st.require_source),
            enable_cmd_exec=_yes(v.get("ENABLE_CMD_EXEC")),
            cmd_cycle_open=v.get("CMD_CYCLE_OPEN"), access_expire=st.expire,
            force_nat=force_nat, variables=MappingProxyType(dict(v)),
            cmd_cycle_close=v.get("CMD_CYCLE_CLOSE"),
            cmd_cycle_timer=st.numbers.get("CMD_CYCLE_TIMER", 0),
            cmd_exec_user=v.get("CMD_EXEC_USER"), cmd_exec_group=v.get("CMD_EXEC_GROUP"),
            enable_cmd_sudo_exec=_yes(v.get("ENABLE_CMD_SUDO_EXEC")),
            cmd_sudo_exec_user=v.get("CMD_SUDO_EXEC_USER"),
            cmd_sudo_exec_group=v.get("CMD_SUDO_EXEC_GROUP"),
            force_snat=v.get("FORCE_SNAT"), force_masquerade=force_masquerade,
            forward_all=_yes(v.get("FORWARD_ALL")), disable_dnat=_yes(v.get("DISABLE_DNAT")),
            path=st.path, line=st.line)

    @staticmethod
    def check_cmd_cycle(st: _Stanza) -> None:
        """8.1: CMD_CYCLE_OPEN and CMD_CYCLE_CLOSE together, a timer unless
        the close command is NONE, each command shorter than 256 chars."""
        opening, closing = st.variables.get("CMD_CYCLE_OPEN"), st.variables.get("CMD_CYCLE_CLOSE")
        if opening is not None and closing is None:
            raise st.error("CMD_CYCLE_OPEN", "Cannot set CMD_CYCLE_OPEN without also setting "
                                             f"CMD_CYCLE_CLOSE: '{st.source}'")
        if closing is not None and opening is None:
            raise st.error("CMD_CYCLE_CLOSE", "Cannot set CMD_CYCLE_CLOSE without also setting "
                                              f"CMD_CYCLE_OPEN: '{st.source}'")
        if opening is None or closing is None:
            return
        if not closing.upper().startswith("NONE") and not st.numbers.get("CMD_CYCLE_TIMER"):
            raise st.error("CMD_CYCLE_TIMER", "Must set the CMD_CYCLE_TIMER for command cycle "
                                              f"functionality: '{st.source}'")
        for name, command in (("CMD_CYCLE_OPEN", opening), ("CMD_CYCLE_CLOSE", closing)):
            if len(command) >= _CMD_CYCLE_BUFSIZE:
                raise st.error(name, f"Command cycle {name[10:].lower()} command is too long: "
                                     f"'{st.source}'")


def parse_access_conf(path: str | Path, *, server_config: ServerConfig | None = None,
                      ) -> tuple[list[AccessStanza], list[str]]:
    """Parse access.conf (spa-protocol.md 8) into stanzas, in file order.

    Args:
        path: the access file, or a folder (ACCESS_FOLDER / --access-folder:
            every ``*.conf`` in it is parsed).
        server_config: when given, FORCE_NAT / FORCE_SNAT are refused unless
            ENABLE_IPT_FORWARDING or ENABLE_IPT_LOCAL_NAT is on, as fwknopd does.

    Returns:
        The stanzas and the warnings (unknown variables, REQUIRE_SOURCE_ADDRESS
        not enabled, legacy key truncation, over-long keys, ignored GPG
        settings, loose file permissions, dropped %include_keys stanzas).

    Raises:
        ConfigError: any of fwknopd's fatal access.conf errors, GPG-only
            stanzas, no stanza at all ("Could not find valid SOURCE stanza"),
            or a bound passed (file size, files, bytes, stanzas). Its
            ``warnings`` holds the warnings collected before it.
    """
    name = os.fspath(path)
    parser = _Parser(server_config)
    try:
        if os.path.isdir(name):
            parser.parse_folder(name, 0, None)
        else:
            parser.parse_file(name, 1)
        kept = [st.built for st in parser.stanzas if st.built is not None]
        if not kept:
            reason = " (every stanza was dropped)" if parser.stanzas else ""
            raise ConfigError(name, None, "SOURCE", "Could not find valid SOURCE stanza in "
                              f"access file: '{shown(name)}'{reason}")
    except ConfigError as exc:
        exc.warnings = (*parser.warnings, *exc.warnings)  # what led up to it, for the daemon
        raise
    stanzas = [replace(built, number=n) for n, built in enumerate(kept, start=1)]
    return stanzas, parser.warnings
