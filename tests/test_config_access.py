# access.conf parsing (spa-protocol.md 8, 2.9, 3.5, 6.4-6.7): the syntax rules
# one by one, includes, typed stanza values, every fatal error with its
# file/line/variable, and every warning.

from __future__ import annotations

import os
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from fwknopd_uci.config import AccessStanza, ConfigError, parse_access_conf, parse_server_conf
from fwknopd_uci.spa import StanzaKeys


def write(tmp_path: Path, text: str | bytes, name: str = "access.conf") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    path.chmod(0o600)
    return path


def load(tmp_path: Path, text: str | bytes) -> tuple[list[AccessStanza], list[str]]:
    return parse_access_conf(write(tmp_path, text))


def one(tmp_path: Path, text: str | bytes) -> AccessStanza:
    stanzas, _ = load(tmp_path, text)
    assert len(stanzas) == 1
    return stanzas[0]


def key(stanza: AccessStanza) -> bytes:
    assert stanza.keys is not None
    return stanza.keys.key


def fatal(tmp_path: Path, text: str | bytes) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value


# -- syntax (8.1) -----------------------------------------------------------

def test_config_access_minimal_stanza(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY fwknoptest\n")
    assert stanza.number == 1 and stanza.source.any
    assert stanza.keys == StanzaKeys(b"fwknoptest", None)
    assert stanza.destination is None and stanza.open_ports is None
    assert stanza.restrict_ports is None
    assert (stanza.fw_access_timeout, stanza.max_fw_timeout) == (30, 300)
    assert not stanza.require_source_address and not stanza.enable_cmd_exec
    assert stanza.require_username is None and stanza.cmd_cycle_open is None
    assert stanza.access_expire is None and stanza.force_nat is None
    assert stanza.path == str(tmp_path / "access.conf") and stanza.line == 1


def test_config_access_comments_only_in_column_one(tmp_path: Path) -> None:
    text = b"SOURCE ANY\n# c\n; c\n\r\n\n\x00KEY bad\nKEY fwknoptest\n  # indented\n"
    stanzas, warnings = load(tmp_path, text)
    assert key(stanzas[0]) == b"fwknoptest"
    # `  # indented` is a variable `#`: not name-like, so reported by line only.
    assert any("Ignoring an unknown access parameter" in w and "at line 8" in w
               for w in warnings)


def test_config_access_semicolon_ends_the_value(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY;\nKEY  fwknoptest;  trailing\nOPEN_PORTS tcp/22;\n")
    assert key(stanza) == b"fwknoptest" and stanza.open_ports == (("tcp", 22),)


def test_config_access_trailing_colon_is_stripped(tmp_path: Path) -> None:
    """8.1: `SOURCE: ANY;` is `SOURCE ANY` (everything from the last ':' goes)."""
    stanzas, warnings = load(tmp_path, "SOURCE: ANY;\nKEY: fwknoptest;\n"
                                       "FW_ACCESS_TIMEOUT: 60\nMAX_FW_TIMEOUT:: 90\n")
    stanza = stanzas[0]
    assert stanza.source.any and key(stanza) == b"fwknoptest"
    assert stanza.fw_access_timeout == 60 and stanza.max_fw_timeout == 300
    assert stanza.variables["SOURCE"] == "ANY"
    assert any("unknown access parameter: 'MAX_FW_TIMEOUT:'" in w for w in warnings)


def test_config_access_colon_before_the_value_is_fatal(tmp_path: Path) -> None:
    """13.6 invalid_source_access.conf: `SOURCE :ANY` is an invalid SOURCE."""
    error = fatal(tmp_path, "SOURCE :ANY\nKEY fwknoptest\n")
    assert (error.line, error.variable) == (1, "SOURCE")
    assert "Fatal invalid SOURCE" in error.message


def test_config_access_spaces_and_hash_inside_values(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY   my secret #1 key   \n")
    assert key(stanza) == b"my secret #1 key"


def test_config_access_crlf_files(tmp_path: Path) -> None:
    stanza = one(tmp_path, b"SOURCE ANY\r\nKEY fwknoptest\r\nOPEN_PORTS tcp/22\r\n")
    assert key(stanza) == b"fwknoptest" and stanza.open_ports == (("tcp", 22),)


def test_config_access_nul_ends_a_line(tmp_path: Path) -> None:
    assert key(one(tmp_path, b"SOURCE ANY\nKEY abc\x00def\n")) == b"abc"


def test_config_access_key_bytes_are_kept_exactly(tmp_path: Path) -> None:
    """Non-UTF-8 bytes in a KEY must reach the KDF unchanged."""
    assert key(one(tmp_path, b"SOURCE ANY\nKEY \xff\xfe\xe9t\xc3\xa9\n")) == \
        b"\xff\xfe\xe9t\xc3\xa9"


def test_config_access_several_stanzas_in_file_order(tmp_path: Path) -> None:
    stanzas, _ = load(tmp_path, "SOURCE 10.0.0.0/8\nKEY one\n\nSOURCE 192.0.2.1\nKEY two\n"
                                "FW_ACCESS_TIMEOUT 5\n\nSOURCE ANY\nKEY three\n")
    assert [s.number for s in stanzas] == [1, 2, 3]
    assert [key(s) for s in stanzas] == [b"one", b"two", b"three"]
    assert [s.fw_access_timeout for s in stanzas] == [30, 5, 30]
    assert [s.line for s in stanzas] == [1, 4, 8]
    assert stanzas[1].source.matches(IPv4Address("192.0.2.1"))


def test_config_access_lines_before_first_source_are_ignored(tmp_path: Path) -> None:
    stanzas, warnings = load(tmp_path, "KEY nope\nNOT_A_VARIABLE x\nOPEN_PORTS junk\n"
                                       "SOURCE ANY\nKEY fwknoptest\n")
    assert key(stanzas[0]) == b"fwknoptest" and stanzas[0].open_ports is None
    assert not any("NOT_A_VARIABLE" in w for w in warnings)


def test_config_access_later_lines_override(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY first\nKEY_BASE64 dGVzdA==\nFW_ACCESS_TIMEOUT 5\n"
                           "FW_ACCESS_TIMEOUT 7\n")
    assert key(stanza) == b"test" and stanza.fw_access_timeout == 7
    stanza = one(tmp_path, "SOURCE ANY\nKEY_BASE64 dGVzdA==\nKEY second\n")
    assert key(stanza) == b"second"


def test_config_access_whitespace_only_line_is_skipped(tmp_path: Path) -> None:
    assert key(one(tmp_path, "SOURCE ANY\n   \t\nKEY fwknoptest\n")) == b"fwknoptest"


def test_config_access_variable_without_value_is_fatal(tmp_path: Path) -> None:
    for text, line in (("SOURCE ANY\nKEY fwknoptest\nOPEN_PORTS\n", 3),
                       ("SOURCE ANY\nKEY fwknoptest\nOPEN_PORTS   ;x\n", 3),
                       ("# header\nKEY\nSOURCE ANY\nKEY fwknoptest\n", 2)):
        error = fatal(tmp_path, text)
        assert error.line == line and "no value" in error.message


def test_config_access_overlong_line(tmp_path: Path) -> None:
    error = fatal(tmp_path, "SOURCE ANY\nKEY " + "k" * 1100 + "\n")
    assert error.line == 2 and "longer than 1023 bytes" in error.message
    stanzas, warnings = load(tmp_path, "#" + "c" * 3000 + "\nSOURCE ANY\nKEY fwknoptest\n")
    assert len(stanzas) == 1 and any("comment line longer" in w for w in warnings)


# -- typed values -------------------------------------------------------------

def test_config_access_all_typed_fields(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE 10.0.0.0/8, 192.168.1.0/255.255.255.0\n"
                           "DESTINATION 203.0.113.1\nOPEN_PORTS tcp/22, udp/53\n"
                           "RESTRICT_PORTS tcp/23\nKEY fwknoptest\nHMAC_KEY hmactest\n"
                           "HMAC_DIGEST_TYPE SHA512\nENCRYPTION_MODE CTR\n"
                           "FW_ACCESS_TIMEOUT 60\nMAX_FW_TIMEOUT 600\nREQUIRE_USERNAME bob\n"
                           "REQUIRE_SOURCE_ADDRESS Y\nENABLE_CMD_EXEC yes\n"
                           "ACCESS_EXPIRE_EPOCH 4102444800\n")
    assert stanza.destination is not None
    assert stanza.destination.matches(IPv4Address("203.0.113.1"))
    assert stanza.open_ports == (("tcp", 22), ("udp", 53))
    assert stanza.restrict_ports == (("tcp", 23),)
    assert stanza.keys == StanzaKeys(b"fwknoptest", b"hmactest", "sha512", "ctr")
    assert (stanza.fw_access_timeout, stanza.max_fw_timeout) == (60, 600)
    assert stanza.require_username == "bob"
    assert stanza.require_source_address and stanza.enable_cmd_exec
    assert stanza.access_expire == 4102444800


@pytest.mark.parametrize("value, expected", [("0", 30), ("-0", 30), ("+0", 30), ("1", 1),
                                             ("045", 45)])
def test_config_access_fw_access_timeout_below_one_is_default(tmp_path: Path, value: str,
                                                              expected: int) -> None:
    stanza = one(tmp_path, f"SOURCE ANY\nKEY k\nFW_ACCESS_TIMEOUT {value}\n"
                           f"MAX_FW_TIMEOUT {value}\n")
    assert stanza.fw_access_timeout == expected
    assert stanza.max_fw_timeout == (300 if expected == 30 else expected)


@pytest.mark.parametrize("value", ["-1", "8388609", "99999999999"])
def test_config_access_timeout_out_of_range_is_fatal(tmp_path: Path, value: str) -> None:
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\nMAX_FW_TIMEOUT {value}\n")
    assert (error.line, error.variable) == (3, "MAX_FW_TIMEOUT")
    assert error.message == f"var MAX_FW_TIMEOUT value '{value}' not in the range 0-8388608"


@pytest.mark.parametrize("value, expected", [("Y", True), ("y", True), ("Yes", True),
                                             ("N", False), ("1", False), ("true", False)])
def test_config_access_booleans_test_the_first_letter(tmp_path: Path, value: str,
                                                      expected: bool) -> None:
    stanza = one(tmp_path, f"SOURCE ANY\nKEY k\nENABLE_CMD_EXEC {value}\n")
    assert stanza.enable_cmd_exec is expected


def test_config_access_require_source_synonym(tmp_path: Path) -> None:
    """6.7: REQUIRE_SOURCE is REQUIRE_SOURCE_ADDRESS; the later line wins."""
    assert one(tmp_path, "SOURCE ANY\nKEY k\nREQUIRE_SOURCE Y\n").require_source_address
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nREQUIRE_SOURCE_ADDRESS Y\nREQUIRE_SOURCE N\n")
    assert not stanza.require_source_address


def test_config_access_key_base64_is_lenient(tmp_path: Path) -> None:
    """2.9 / 1.2: no padding needed, decoding stops at the first '='."""
    assert key(one(tmp_path, "SOURCE ANY\nKEY_BASE64 dGVzdA\n")) == b"test"
    assert key(one(tmp_path, "SOURCE ANY\nKEY_BASE64 dGVzdA==AAAA\n")) == b"test"
    stanza = one(tmp_path, "SOURCE ANY\nKEY_BASE64 wzNP62oPPgEc+kXDPQLHPOayQBuNbYUTPP+QrErNDmg=\n"
                           "HMAC_KEY_BASE64 dGVzdHRlc3Q=\n")
    assert len(key(stanza)) == 32
    assert stanza.keys is not None and stanza.keys.hmac_key == b"testtest"


def test_config_access_empty_hmac_key_means_no_hmac(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nHMAC_KEY_BASE64 =\n")
    assert stanza.keys is not None and stanza.keys.hmac_key is None


def test_config_access_hmac_type_default_and_modes(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nHMAC_KEY h\nENCRYPTION_MODE Legacy\n")
    assert stanza.keys is not None
    assert (stanza.keys.hmac_type, stanza.keys.mode) == ("sha256", "legacy")


def test_config_access_expire_date(tmp_path: Path) -> None:
    """8.3: MM/DD/YYYY, two-digit years are 20YY, local midnight."""
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nACCESS_EXPIRE 3/10/01\n")
    assert stanza.access_expire == int(time.mktime((2001, 3, 10, 0, 0, 0, 0, 0, -1)))
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nACCESS_EXPIRE 03/10/2500\n")
    assert stanza.access_expire == int(time.mktime((2500, 3, 10, 0, 0, 0, 0, 0, -1)))
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nACCESS_EXPIRE_EPOCH 1111111111\n")
    assert stanza.access_expire == 1111111111


@pytest.mark.parametrize("name, value", [("ACCESS_EXPIRE", "3-10-01"),
                                         ("ACCESS_EXPIRE", "tomorrow"),
                                         ("ACCESS_EXPIRE", "3/10"),
                                         ("ACCESS_EXPIRE_EPOCH", "-5")])
def test_config_access_bad_expiry_is_fatal(tmp_path: Path, name: str, value: str) -> None:
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n{name} {value}\n")
    assert (error.line, error.variable) == (3, name)


def test_config_access_variables_as_written_and_read_only(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE: ANY\nKEY fwknoptest\nkeytype Base 64 key\n"
                           "FW_ACCESS_TIMEOUT 0\n")
    assert dict(stanza.variables) == {"SOURCE": "ANY", "KEY": "fwknoptest",
                                      "FW_ACCESS_TIMEOUT": "0"}
    with pytest.raises(TypeError):
        stanza.variables["KEY"] = "x"  # type: ignore[index]


def test_config_access_repr_hides_keys(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY supersecretkey\nHMAC_KEY otherhmacsecret\n")
    assert "supersecretkey" not in repr(stanza)
    assert "otherhmacsecret" not in repr(stanza)
    assert "supersecretkey" not in str(stanza)


def test_config_access_stanza_is_frozen_and_hashable(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\n")
    with pytest.raises(AttributeError):
        stanza.number = 2  # type: ignore[misc]
    assert hash(stanza) == hash(one(tmp_path, "SOURCE ANY\nKEY k\n"))


# -- includes (8.1) -------------------------------------------------------------

def test_config_access_include_in_place(tmp_path: Path) -> None:
    inc = write(tmp_path, "KEY ignored-before-source\nSOURCE 10.0.0.1\nKEY two\n", "inc.conf")
    stanzas, _ = load(tmp_path, f"SOURCE ANY\n%include {inc}\nKEY one\nSOURCE 10.0.0.3\n"
                                "KEY three\n")
    assert [key(s) for s in stanzas] == [b"one", b"two", b"three"]
    assert [s.number for s in stanzas] == [1, 2, 3]
    assert stanzas[1].path == str(inc)


def test_config_access_include_with_colon(tmp_path: Path) -> None:
    inc = write(tmp_path, "SOURCE ANY\nKEY k\n", "inc.conf")
    stanzas, _ = load(tmp_path, f"%include: {inc}\n")
    assert len(stanzas) == 1


def test_config_access_include_depth_limit_three(tmp_path: Path) -> None:
    level3 = write(tmp_path, "SOURCE 10.0.0.3\nKEY three\n", "l3.conf")
    level2 = write(tmp_path, f"SOURCE 10.0.0.2\nKEY two\n%include {level3}\n", "l2.conf")
    stanzas, _ = load(tmp_path, f"SOURCE ANY\nKEY one\n%include {level2}\n")
    assert [key(s) for s in stanzas] == [b"one", b"two", b"three"]

    level4 = write(tmp_path, "SOURCE ANY\nKEY four\n", "l4.conf")
    write(tmp_path, f"# deep\n%include {level4}\n", "l3.conf")
    error = fatal(tmp_path, f"SOURCE ANY\nKEY one\n%include {level2}\n")
    assert (error.path, error.line, error.variable) == (str(level3), 2, "%include")
    assert error.message == f"Refusing to go deeper than 3 levels. Lost in Limbo: '{level4}'"


def test_config_access_self_include_stops_at_depth(tmp_path: Path) -> None:
    path = tmp_path / "access.conf"
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n%include {path}\n")
    assert "Refusing to go deeper than 3 levels" in error.message


def test_config_access_missing_include_is_fatal_at_its_line(tmp_path: Path) -> None:
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n%include {tmp_path / 'nope.conf'}\n")
    assert (error.line, error.variable) == (3, "%include")
    assert "was not found" in error.message


def test_config_access_include_folder(tmp_path: Path) -> None:
    folder = tmp_path / "stanzas"
    write(folder, "SOURCE 10.0.0.2\nKEY b\n", "b.conf")
    write(folder, "SOURCE 10.0.0.1\nKEY a\n", "a.conf")
    write(folder, "SOURCE 10.0.0.9\nKEY skip\n", "c.conf.bak")
    write(folder, "SOURCE 10.0.0.9\nKEY skip\n", "d.txt")
    write(folder, "SOURCE 10.0.0.3\nKEY c\n", "e.confnew")  # last extension starts .conf
    (folder / "f.conf").mkdir()
    stanzas, warnings = load(tmp_path, f"%include_folder {folder}\nSOURCE ANY\nKEY last\n")
    assert [key(s) for s in stanzas] == [b"a", b"b", b"c", b"last"]
    assert any("not a regular file" in w for w in warnings)


def test_config_access_include_folder_missing_is_fatal(tmp_path: Path) -> None:
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n%include_folder {tmp_path / 'none'}\n")
    assert (error.line, error.variable) == (3, "%include_folder")
    assert "could not be opened" in error.message


def test_config_access_folder_as_access_file(tmp_path: Path) -> None:
    """ACCESS_FOLDER / --access-folder: every *.conf of the folder."""
    write(tmp_path / "d", "SOURCE 10.0.0.1\nKEY a\n", "1.conf")
    write(tmp_path / "d", "SOURCE 10.0.0.2\nKEY b\n", "2.conf")
    stanzas, _ = parse_access_conf(tmp_path / "d")
    assert [key(s) for s in stanzas] == [b"a", b"b"]


def test_config_access_include_keys(tmp_path: Path) -> None:
    keys = write(tmp_path, "KEY_BASE64: dGVzdA==;\nHMAC_KEY hmacsecret\nOPEN_PORTS tcp/1\n",
                 "keys.conf")
    stanzas, warnings = load(tmp_path, f"%include_keys {keys}\nSOURCE ANY\n"
                                       f"%include_keys {keys}\nOPEN_PORTS tcp/22\n")
    stanza = stanzas[0]
    assert stanza.keys == StanzaKeys(b"test", b"hmacsecret")
    assert stanza.open_ports == (("tcp", 22),)
    assert any("Ignoring invalid entry: 'OPEN_PORTS'" in w for w in warnings)
    assert stanza.variables["HMAC_KEY"] == "hmacsecret"


def test_config_access_include_keys_missing_file_drops_the_stanza(tmp_path: Path) -> None:
    stanzas, warnings = load(tmp_path, f"SOURCE 10.0.0.1\n%include_keys {tmp_path / 'gone'}\n"
                                       "SOURCE ANY\nKEY k\n")
    assert len(stanzas) == 1 and stanzas[0].source.any and stanzas[0].number == 1
    assert any("Could not include key file" in w for w in warnings)
    assert any("no usable key after %include_keys; stanza dropped" in w for w in warnings)


def test_config_access_include_keys_keeps_a_stanza_with_its_own_key(tmp_path: Path) -> None:
    stanzas, _ = load(tmp_path, f"SOURCE ANY\nKEY k\n%include_keys {tmp_path / 'gone'}\n")
    assert key(stanzas[0]) == b"k"


def test_config_access_include_keys_errors_are_fatal(tmp_path: Path) -> None:
    keys = write(tmp_path, "# keys\nHMAC_KEY __changeme__\n", "keys.conf")
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n%include_keys {keys}\n")
    assert (error.path, error.line, error.variable) == (str(keys), 2, "HMAC_KEY")


def test_config_access_all_stanzas_dropped_is_fatal(tmp_path: Path) -> None:
    error = fatal(tmp_path, f"SOURCE ANY\n%include_keys {tmp_path / 'gone'}\n")
    assert "Could not find valid SOURCE stanza" in error.message


# -- fatal errors ---------------------------------------------------------------

def test_config_access_missing_file_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_access_conf(tmp_path / "missing.conf")
    assert info.value.line is None and "was not found" in info.value.message


def test_config_access_no_stanza_is_fatal(tmp_path: Path) -> None:
    error = fatal(tmp_path, "# nothing\nKEY fwknoptest\n")
    assert error.variable == "SOURCE" and error.line is None
    assert error.message.startswith("Could not find valid SOURCE stanza")


def test_config_access_no_keys_is_fatal(tmp_path: Path) -> None:
    error = fatal(tmp_path, "SOURCE ANY\nOPEN_PORTS tcp/22\nSOURCE 10.0.0.1\nKEY k\n")
    assert (error.line, error.variable) == (1, "KEY")
    assert error.message == "No keys found for access stanza source: 'ANY'"


@pytest.mark.parametrize("name", ["KEY", "KEY_BASE64", "HMAC_KEY", "HMAC_KEY_BASE64",
                                  "GPG_DECRYPT_PW"])
@pytest.mark.parametrize("placeholder", ["__CHANGEME__", "__changeme__", "__ChangeMe__"])
def test_config_access_changeme_is_fatal(tmp_path: Path, name: str, placeholder: str) -> None:
    error = fatal(tmp_path, f"SOURCE ANY\nKEY fwknoptest\n{name} {placeholder}\n")
    assert (error.line, error.variable) == (3, name)
    assert "not properly set" in error.message


@pytest.mark.parametrize("value", ["dGVz dA==", "abc!", "dGVzdA==\t x", "abc-_"])
def test_config_access_bad_base64_is_fatal(tmp_path: Path, value: str) -> None:
    error = fatal(tmp_path, f"SOURCE ANY\nKEY_BASE64 {value}\n")
    assert (error.line, error.variable) == (2, "KEY_BASE64")
    assert "doesn't look like base64-encoded data" in error.message


@pytest.mark.parametrize("text, line, variable", [
    ("SOURCE ANY\nKEY test\nHMAC_KEY test\n", 3, "HMAC_KEY"),
    ("SOURCE ANY\nHMAC_KEY_BASE64 dGVzdA==\nKEY_BASE64 dGVzdA\n", 2, "HMAC_KEY_BASE64"),
    ("SOURCE ANY\nKEY_BASE64 dGVzdA==\nHMAC_KEY test\n", 3, "HMAC_KEY"),
    # 3.5: compared after the legacy truncation of the KEY to 16 bytes.
    ("SOURCE ANY\nENCRYPTION_MODE legacy\nKEY 1234567890123456xyz\nHMAC_KEY 1234567890123456\n",
     4, "HMAC_KEY"),
])
def test_config_access_equal_keys_are_fatal(tmp_path: Path, text: str, line: int,
                                            variable: str) -> None:
    error = fatal(tmp_path, text)
    assert (error.line, error.variable) == (line, variable)
    assert error.message == ("The encryption passphrase and HMAC key should not be identical "
                             "for access stanza source: 'ANY'")


@pytest.mark.parametrize("name, value", [
    ("SOURCE", "0.0.0.0/0"), ("SOURCE", "123.123.123.1234/24"), ("SOURCE", "A0.10.10.10"),
    ("SOURCE", "ANY, 10.0.0.0/33"), ("DESTINATION", "1.2.3.4/0"), ("DESTINATION", "nowhere"),
    ("OPEN_PORTS", "tcp/123453"), ("OPEN_PORTS", "icmp/8"), ("RESTRICT_PORTS", "A" * 40),
    ("RESTRICT_PORTS", "tcp/22, udp"),
])
def test_config_access_bad_list_entries_are_fatal(tmp_path: Path, name: str,
                                                  value: str) -> None:
    source = value if name == "SOURCE" else "ANY"
    text = f"SOURCE {source}\nKEY k\n" + ("" if name == "SOURCE" else f"{name} {value}\n")
    error = fatal(tmp_path, text)
    assert (error.line, error.variable) == (1 if name == "SOURCE" else 3, name)
    assert error.message.startswith(f"Fatal invalid {name} in access stanza")


@pytest.mark.parametrize("name, value", [("HMAC_DIGEST_TYPE", "sha224"),
                                         ("HMAC_DIGEST_TYPE", "sha3-256"),
                                         ("ENCRYPTION_MODE", "pcbc"),
                                         ("ENCRYPTION_MODE", "aes")])
def test_config_access_bad_names_are_fatal(tmp_path: Path, name: str, value: str) -> None:
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n{name} {value}\n")
    assert (error.line, error.variable) == (3, name)


def test_config_access_gpg_only_stanza_is_fatal(tmp_path: Path) -> None:
    for extra in ("GPG_DECRYPT_PW secret\nGPG_REMOTE_ID ABCD\n", "GPG_ALLOW_NO_PW Y\n",
                  "ENCRYPTION_MODE Asymmetric\n"):
        error = fatal(tmp_path, f"SOURCE ANY\n{extra}")
        assert (error.line, error.variable) == (1, "SOURCE")
        assert "GPG" in error.message and "not support (yet)" in error.message


@pytest.mark.parametrize("extra, line, variable, message", [
    ("CMD_CYCLE_OPEN /bin/true\n", 3, "CMD_CYCLE_OPEN", "Cannot set CMD_CYCLE_OPEN without"),
    ("CMD_CYCLE_CLOSE /bin/true\n", 3, "CMD_CYCLE_CLOSE", "Cannot set CMD_CYCLE_CLOSE without"),
    ("CMD_CYCLE_OPEN a\nCMD_CYCLE_CLOSE b\n", 1, "CMD_CYCLE_TIMER", "Must set the"),
    ("CMD_CYCLE_OPEN " + "x" * 256 + "\nCMD_CYCLE_CLOSE NONE\n", 3, "CMD_CYCLE_OPEN",
     "too long"),
])
def test_config_access_cmd_cycle_rules(tmp_path: Path, extra: str, line: int, variable: str,
                                       message: str) -> None:
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n{extra}")
    assert (error.line, error.variable) == (line, variable)
    assert message in error.message


def test_config_access_cmd_cycle_values(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nCMD_CYCLE_OPEN echo open $IP\n"
                           "CMD_CYCLE_CLOSE echo close $IP\nCMD_CYCLE_TIMER 10\n")
    assert stanza.cmd_cycle_open == "echo open $IP"
    assert stanza.cmd_cycle_close == "echo close $IP" and stanza.cmd_cycle_timer == 10
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nCMD_CYCLE_OPEN x\nCMD_CYCLE_CLOSE NONE\n")
    assert stanza.cmd_cycle_close == "NONE" and stanza.cmd_cycle_timer == 0


def test_config_access_cmd_exec_user_must_exist(tmp_path: Path) -> None:
    assert one(tmp_path, "SOURCE ANY\nKEY k\nCMD_EXEC_USER root\n").cmd_exec_user == "root"
    error = fatal(tmp_path, "SOURCE ANY\nKEY k\nCMD_EXEC_USER no_such_user_fwknopd_uci\n")
    assert (error.line, error.variable) == (3, "CMD_EXEC_USER")


def test_config_access_force_nat(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nFORCE_NAT 192.168.1.123 22\n")
    assert stanza.force_nat == "192.168.1.123 22"
    for value in ("192.168.1.123", "192.168.1.1234 22", "host 22", "10.0.0.1 70000"):
        error = fatal(tmp_path, f"SOURCE ANY\nKEY k\nFORCE_NAT {value}\n")
        assert (error.line, error.variable) == (3, "FORCE_NAT")


def test_config_access_force_nat_needs_nat_in_fwknopd_conf(tmp_path: Path) -> None:
    path = write(tmp_path, "SOURCE ANY\nKEY k\nFORCE_NAT 10.0.0.2 22\n")
    server, _ = parse_server_conf(write(tmp_path, "# defaults\n", "fwknopd.conf"))
    with pytest.raises(ConfigError) as info:
        parse_access_conf(path, server_config=server)
    assert "requires either ENABLE_IPT_FORWARDING or ENABLE_IPT_LOCAL_NAT" in info.value.message
    nat = server.with_values(ENABLE_IPT_FORWARDING="Y")
    assert parse_access_conf(path, server_config=nat)[0][0].force_nat == "10.0.0.2 22"


def test_config_access_force_snat_needs_force_nat_or_forward_all(tmp_path: Path) -> None:
    error = fatal(tmp_path, "SOURCE ANY\nKEY k\nFORCE_SNAT 10.0.0.1\n")
    assert (error.line, error.variable) == (3, "FORCE_SNAT")
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nFORCE_MASQUERADE Y\nFORWARD_ALL Y\n")
    assert stanza.force_nat == "0.0.0.0 0" and stanza.force_masquerade and stanza.forward_all


def test_config_access_error_text_format(tmp_path: Path) -> None:
    error = fatal(tmp_path, "SOURCE ANY\nKEY k\nOPEN_PORTS tcp/123453\n")
    assert str(error).startswith(f"{tmp_path / 'access.conf'}:3: OPEN_PORTS: Fatal invalid")


# -- warnings -----------------------------------------------------------------

def test_config_access_unknown_parameter_warning(tmp_path: Path) -> None:
    """LuCI's keytype/hkeytype hints (openwrt.md 1.3) are only noise; a
    lower-case word is not name-like, so it is reported by its line only."""
    path = tmp_path / "access.conf"
    _, warnings = load(tmp_path, "SOURCE ANY\nkeytype Base 64 key\nKEY k\nKEYTYPE x\n")
    assert (f"[*] Ignoring an unknown access parameter in {path} at line 2 (not shown: it "
            "does not look like a variable name)") in warnings
    assert f"[*] Ignoring unknown access parameter: 'KEYTYPE' in {path} at line 4" in warnings


def test_config_access_require_source_address_warning_per_stanza(tmp_path: Path) -> None:
    _, warnings = load(tmp_path, "SOURCE ANY\nKEY a\nSOURCE 10.0.0.1\nKEY b\n"
                                 "REQUIRE_SOURCE_ADDRESS Y\nSOURCE 10.0.0.2\nKEY c\n")
    expected = [f"Warning: REQUIRE_SOURCE_ADDRESS not enabled for access stanza source: '{s}'"
                for s in ("ANY", "10.0.0.2")]
    assert [w for w in warnings if "REQUIRE_SOURCE_ADDRESS" in w] == expected


def test_config_access_legacy_key_truncated_with_warning(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY 1234567890123456blah\nENCRYPTION_MODE legacy\n")
    assert key(stanza) == b"1234567890123456"
    _, warnings = load(tmp_path, "SOURCE ANY\nKEY 1234567890123456blah\nENCRYPTION_MODE legacy\n")
    assert ("Warning: truncating encryption key in legacy mode to 16 bytes for access stanza "
            "source: 'ANY'") in warnings


def test_config_access_key_longer_than_32_bytes_warns(tmp_path: Path) -> None:
    stanzas, warnings = load(tmp_path, "SOURCE ANY\nKEY " + "k" * 33 + "\n")
    assert len(key(stanzas[0])) == 33
    assert any("33 bytes" in w and "every SPA packet fail" in w for w in warnings)
    _, warnings = load(tmp_path, "SOURCE ANY\nKEY " + "k" * 32 + "\n")
    assert not any("every SPA packet fail" in w for w in warnings)


def test_config_access_gpg_lines_next_to_a_key_are_ignored(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nGPG_DECRYPT_PW pw\nGPG_HOME_DIR /nonexistent\n")
    assert key(stanza) == b"k"
    _, warnings = load(tmp_path, "SOURCE ANY\nKEY k\nGPG_DECRYPT_PW pw\nGPG_HOME_DIR /x\n")
    assert any("Ignoring GPG_HOME_DIR, GPG_DECRYPT_PW" in w and "not supported" in w
               for w in warnings)


def test_config_access_asymmetric_mode_with_a_key_uses_cbc(tmp_path: Path) -> None:
    stanza = one(tmp_path, "SOURCE ANY\nKEY k\nENCRYPTION_MODE Asymmetric\n")
    assert stanza.keys is not None and stanza.keys.mode == "cbc"
    _, warnings = load(tmp_path, "SOURCE ANY\nKEY k\nENCRYPTION_MODE Asymmetric\n")
    assert any("ENCRYPTION_MODE Asymmetric" in w for w in warnings)


def test_config_access_fw_access_timeout_above_max_warns(tmp_path: Path) -> None:
    """6.4: FW_ACCESS_TIMEOUT is not capped by MAX_FW_TIMEOUT, only warned about."""
    stanzas, warnings = load(tmp_path, "SOURCE ANY\nKEY k\nFW_ACCESS_TIMEOUT 600\n")
    assert (stanzas[0].fw_access_timeout, stanzas[0].max_fw_timeout) == (600, 300)
    assert any("FW_ACCESS_TIMEOUT 600 is greater than MAX_FW_TIMEOUT 300" in w for w in warnings)
    _, warnings = load(tmp_path, "SOURCE ANY\nKEY k\nFW_ACCESS_TIMEOUT 300\n")
    assert not any("is greater than" in w for w in warnings)


def test_config_access_permission_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "SOURCE ANY\nKEY k\n")
    path.chmod(0o644)
    assert any("permissions should only be user read/write" in w
               for w in parse_access_conf(path)[1])


def test_config_access_messages_escape_control_characters(tmp_path: Path) -> None:
    """A word with an escape is not name-like (never quoted); a file name with
    one is shown escaped."""
    _, warnings = load(tmp_path, b"SOURCE ANY\nKEY k\nBAD\x1b[31m x\n")
    assert any("unknown access parameter" in w and "line 3" in w for w in warnings)
    assert not any("\x1b" in w or "BAD" in w for w in warnings)
    odd = write(tmp_path, "SOURCE ANY\nKEY k\n", "a\x1b[2Jb.conf")
    odd.chmod(0o644)
    warnings = parse_access_conf(odd)[1]
    assert any("a\\x1b[2Jb.conf" in w for w in warnings)
    assert not any("\x1b" in w for w in warnings)


def test_config_access_owner_warning(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file to another user")
    path = write(tmp_path, "SOURCE ANY\nKEY k\n")
    os.chown(path, 65534, 65534)
    assert any("not owned by current effective user id: 0" in w
               for w in parse_access_conf(path)[1])


def test_config_access_include_folder_counts_as_a_level(tmp_path: Path) -> None:
    write(tmp_path / "deep", "SOURCE ANY\nKEY k\n", "x.conf")
    level3 = write(tmp_path, f"%include_folder {tmp_path / 'deep'}\n", "l3.conf")
    level2 = write(tmp_path, f"%include {level3}\n", "l2.conf")
    error = fatal(tmp_path, f"%include {level2}\n")
    assert (error.path, error.line, error.variable) == (str(level3), 1, "%include_folder")
    assert "Refusing to go deeper than 3 levels" in error.message


def test_config_access_number_of_files_is_bounded(tmp_path: Path) -> None:
    small = write(tmp_path, "SOURCE ANY\nKEY k\n", "small.conf")
    error = fatal(tmp_path, f"%include {small}\n" * 300)
    assert "more than 256 files" in error.message


# -- keys never reach a message (break-test findings) ---------------------------

# A key as fwknop --key-gen writes it (not a real one).
GEN_KEY = "NcjhQ3vq9n8fLmP2xYzAbCdEfGhIjKlMnOpQrStUvGY="


def texts(error: ConfigError) -> str:
    return "\n".join([str(error), *error.warnings])


@pytest.mark.parametrize("line", [f"KEY_BASE64={GEN_KEY}", GEN_KEY, f"HMAC_KEY:{GEN_KEY}:x",
                                  f"{GEN_KEY}:"])
def test_config_access_key_alone_or_glued_is_not_echoed(tmp_path: Path, line: str) -> None:
    """A word without a value is fatal (8.1), but the word is not quoted."""
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n{line}\n")
    assert (error.line, error.variable) == (3, None)
    assert "unparseable line" in error.message
    assert GEN_KEY not in texts(error) and GEN_KEY[:8] not in texts(error)
    assert str(error) == f"{tmp_path / 'access.conf'}:3: {error.message}"


def test_config_access_key_as_first_word_is_not_echoed(tmp_path: Path) -> None:
    _, warnings = load(tmp_path, f"SOURCE ANY\nKEY k\n{GEN_KEY} trailing\nKEY_BASE64 {GEN_KEY}\n")
    assert any("unknown access parameter" in w and "line 3" in w for w in warnings)
    assert not any(GEN_KEY[:8] in w for w in warnings)


def test_config_access_key_alone_in_a_key_file_is_not_echoed(tmp_path: Path) -> None:
    keys = write(tmp_path, f"{GEN_KEY} # pasted\nKEY_BASE64 {GEN_KEY}\n", "keys.conf")
    stanzas, warnings = load(tmp_path, f"SOURCE ANY\n%include_keys {keys}\n")
    assert len(key(stanzas[0])) == 32
    assert any("Ignoring an invalid entry in key file" in w and "line 1" in w for w in warnings)
    assert not any(GEN_KEY[:8] in w for w in warnings)
    write(tmp_path, f"{GEN_KEY}\n", "keys.conf")
    error = fatal(tmp_path, f"SOURCE ANY\n%include_keys {keys}\n")
    assert (error.path, error.line, error.variable) == (str(keys), 1, None)
    assert GEN_KEY[:8] not in texts(error)


@pytest.mark.parametrize("text, variable", [
    (f"SOURCE ANY KEY_BASE64 {GEN_KEY}\nKEY k\n", "SOURCE"),      # two lines run together
    (f"SOURCE ANY\nKEY k\nOPEN_PORTS tcp/22 KEY_BASE64 {GEN_KEY}\n", "OPEN_PORTS"),
    (f"SOURCE ANY\nKEY k\nFW_ACCESS_TIMEOUT 30 KEY_BASE64 {GEN_KEY}\n", "FW_ACCESS_TIMEOUT"),
    (f"SOURCE ANY\nKEY k\nHMAC_DIGEST_TYPE {GEN_KEY}\n", "HMAC_DIGEST_TYPE"),
    (f"SOURCE ANY\nKEY k\nENCRYPTION_MODE {GEN_KEY}\n", "ENCRYPTION_MODE"),
    (f"SOURCE ANY\nKEY k\nACCESS_EXPIRE {GEN_KEY}\n", "ACCESS_EXPIRE"),
    (f"SOURCE ANY\nKEY k\nCMD_EXEC_USER {GEN_KEY}\n", "CMD_EXEC_USER"),
    (f"SOURCE ANY\nKEY k\nFORCE_NAT {GEN_KEY}\n", "FORCE_NAT"),
    (f"SOURCE ANY\nKEY k\n%include {GEN_KEY}\n", "%include"),
    (f"SOURCE ANY\nKEY k\n%include_folder {GEN_KEY}\n", "%include_folder"),
    (f"SOURCE ANY\nKEY_BASE64 {GEN_KEY} x\n", "KEY_BASE64"),
])
def test_config_access_bad_values_are_not_quoted(tmp_path: Path, text: str,
                                                 variable: str) -> None:
    error = fatal(tmp_path, text)
    assert error.variable == variable
    assert GEN_KEY[:8] not in texts(error)


def test_config_access_invalid_source_is_not_quoted_in_warnings(tmp_path: Path) -> None:
    """Stanza messages quote the SOURCE only once it parses as an address list."""
    error = fatal(tmp_path, f"SOURCE 10.0.0.1 KEY_BASE64 {GEN_KEY}\nKEY k\n")
    assert GEN_KEY[:8] not in texts(error)
    assert any("(invalid SOURCE at" in w for w in error.warnings)


def test_config_access_existing_include_path_is_shown(tmp_path: Path) -> None:
    """A path is quoted when it names a file; a missing one is not."""
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n%include {tmp_path}\n")
    assert "not a regular file" in error.message and f"'{tmp_path}'" in error.message
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n%include {tmp_path / 'gone.conf'}\n")
    assert "gone.conf" not in error.message and "not shown" in error.message


# -- bounded loading ------------------------------------------------------------

def test_config_access_file_over_one_mib_is_fatal(tmp_path: Path) -> None:
    filler = "# " + "x" * 1000 + "\n"
    body = "SOURCE ANY\nKEY k\n"
    text = body + filler * ((1024 * 1024 - len(body)) // len(filler))
    assert len(one(tmp_path, text).variables) == 2  # just under 1 MiB: fine
    error = fatal(tmp_path, text + filler)
    assert error.line is None and "larger than 1048576 bytes" in error.message


def test_config_access_character_device_is_refused(tmp_path: Path) -> None:
    """`-a /dev/zero` must neither hang nor fill memory."""
    with pytest.raises(ConfigError, match="not a regular file"):
        parse_access_conf("/dev/zero")
    error = fatal(tmp_path, "SOURCE ANY\nKEY k\n%include /dev/zero\n")
    assert (error.line, error.variable) == (3, "%include")
    assert "not a regular file" in error.message


def test_config_access_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        parse_access_conf(fifo)


def test_config_access_fifo_swapped_in_after_the_check(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is repeated on the open descriptor, and the open does not
    block: a FIFO put in place after the stat is refused, not waited on."""
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    regular = write(tmp_path, "SOURCE ANY\nKEY k\n", "real.conf")
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *a, **k: real_stat(
        regular if os.fspath(path) == str(fifo) else path, *a, **k))
    with pytest.raises(ConfigError, match="not a regular file"):
        parse_access_conf(fifo)


def test_config_access_include_tree_bytes_are_bounded(tmp_path: Path) -> None:
    big = write(tmp_path, "SOURCE ANY\nKEY k\n" + ("#" + "y" * 1000 + "\n") * 1000, "big.conf")
    error = fatal(tmp_path, f"%include {big}\n" * 5)
    assert error.line == 5 and "larger than 4194304 bytes" in error.message


def test_config_access_number_of_stanzas_is_bounded(tmp_path: Path) -> None:
    assert len(load(tmp_path, "SOURCE ANY\nKEY k\n" * 4096)[0]) == 4096
    error = fatal(tmp_path, "SOURCE ANY\nKEY k\n" * 4097)
    assert (error.line, error.variable) == (2 * 4097 - 1, "SOURCE")
    assert "more than 4096 access stanzas" in error.message


def test_config_access_folder_entries_are_bounded(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from fwknopd_uci.config import access_conf
    monkeypatch.setattr(access_conf, "MAX_FOLDER_ENTRIES", 3)
    for name in ("a.conf", "b.conf", "c.txt", "d.txt"):
        write(tmp_path / "d", "SOURCE ANY\nKEY k\n", name)
    error = fatal(tmp_path, f"%include_folder {tmp_path / 'd'}\n")
    assert "more than 3 entries" in error.message


def test_config_access_warnings_are_bounded(tmp_path: Path) -> None:
    _, warnings = load(tmp_path, "SOURCE ANY\nKEY k\n" + "UNKNOWN x\n" * 1000)
    assert len(warnings) == 101
    assert warnings[-1] == "[*] More than 100 warnings; the rest are not shown"


# -- integers and ports -----------------------------------------------------------

@pytest.mark.parametrize("name", ["FW_ACCESS_TIMEOUT", "MAX_FW_TIMEOUT", "CMD_CYCLE_TIMER",
                                  "ACCESS_EXPIRE_EPOCH"])
@pytest.mark.parametrize("value", ["ten", "45s", "0x10", "3 0", "1e3", "٣", "-"])
def test_config_access_non_numeric_integer_is_fatal(tmp_path: Path, name: str,
                                                    value: str) -> None:
    """fwknopd's strtol reads "ten" as 0 (FW_ACCESS_TIMEOUT: the 30 s default,
    ACCESS_EXPIRE_EPOCH: expired in 1970) and "45s" as 45; we refuse."""
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n{name} {value}\n")
    assert (error.line, error.variable) == (3, name)
    assert "not a whole number" in error.message and f"'{value}'" not in error.message


@pytest.mark.parametrize("name", ["OPEN_PORTS", "RESTRICT_PORTS"])
@pytest.mark.parametrize("value", ["tcp/0", "tcp/22, udp/0", "udp/000"])
def test_config_access_port_zero_is_fatal(tmp_path: Path, name: str, value: str) -> None:
    error = fatal(tmp_path, f"SOURCE ANY\nKEY k\n{name} {value}\n")
    assert (error.line, error.variable) == (3, name)
    assert "1..65535" in error.message


# -- byte order mark, warnings before a fatal error ------------------------------

def test_config_access_utf8_bom_is_ignored(tmp_path: Path) -> None:
    keys = write(tmp_path, "\ufeffKEY_BASE64 dGVzdA==\n", "keys.conf")
    inc = write(tmp_path, "\ufeffSOURCE 10.0.0.1\nKEY two\n", "inc.conf")
    stanzas, warnings = load(tmp_path, f"\ufeffSOURCE ANY\n%include_keys {keys}\n"
                                       f"%include {inc}\n")
    assert [key(s) for s in stanzas] == [b"test", b"two"]
    assert not any("unknown" in w or "invalid entry" in w for w in warnings)


def test_config_access_bom_only_at_the_start(tmp_path: Path) -> None:
    _, warnings = load(tmp_path, "SOURCE ANY\nKEY k\n\ufeffREQUIRE_SOURCE_ADDRESS Y\n")
    assert any("unknown access parameter" in w and "line 3" in w for w in warnings)


def test_config_access_error_carries_the_warnings_before_it(tmp_path: Path) -> None:
    keys = tmp_path / "gone.conf"
    error = fatal(tmp_path, f"SOURCE ANY\n%include_keys {keys}\nKEY_TYPO k\n")
    assert "Could not find valid SOURCE stanza" in error.message
    assert any("KEY_TYPO" in w for w in error.warnings)
    assert any("Could not include key file" in w for w in error.warnings)
    assert any("stanza dropped" in w for w in error.warnings)


def test_config_access_error_with_warnings_pickles(tmp_path: Path) -> None:
    import pickle
    error = fatal(tmp_path, "SOURCE ANY\nKEY k\nBOGUS x\nFW_ACCESS_TIMEOUT ten\n")
    assert error.warnings and "BOGUS" in error.warnings[0]
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.warnings) == (str(error), error.warnings)
