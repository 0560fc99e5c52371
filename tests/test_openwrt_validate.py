# The value rules of /etc/config/fwknopd (openwrt/validate.py): the datatype
# table, the one-line rule for every value, and the whole-section checks.

from __future__ import annotations

import pytest

from fwknopd_uci.config import server_conf
from fwknopd_uci.openwrt import validate
from fwknopd_uci.openwrt.uci import parse
from fwknopd_uci.openwrt.validate import (
    ValidationError,
    is_placeholder,
    normalize_value,
    option_datatype,
    validate_option,
    validate_package,
)

KEY = "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc="
HMAC = ("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1"
        "lqQXuQ==")


@pytest.mark.parametrize(("section", "name", "value"), [
    ("access", "SOURCE", "ANY"),
    ("access", "SOURCE", "198.51.100.0/24, 192.0.2.7"),
    ("access", "SOURCE", ["198.51.100.0/24", "ANY"]),
    ("access", "DESTINATION", "192.0.2.0/255.255.255.0"),
    ("access", "OPEN_PORTS", "tcp/22"),
    ("access", "OPEN_PORTS", "tcp/22, udp/1194"),
    ("access", "OPEN_PORTS", ["tcp/22", "udp/1194"]),
    ("access", "RESTRICT_PORTS", "TCP/23"),
    ("access", "KEY_BASE64", KEY),
    ("access", "HMAC_KEY_BASE64", HMAC),
    ("access", "KEY", "a plain passphrase"),
    ("access", "HMAC_KEY", "x" * 128),
    ("access", "HMAC_DIGEST_TYPE", "SHA512"),
    ("access", "ENCRYPTION_MODE", "cbc"),
    ("access", "ENCRYPTION_MODE", "Legacy"),
    ("access", "FW_ACCESS_TIMEOUT", "30"),
    ("access", "MAX_FW_TIMEOUT", "0"),
    ("access", "REQUIRE_SOURCE_ADDRESS", "Y"),
    ("access", "ENABLE_CMD_EXEC", "yes"),
    ("access", "FORWARD_ALL", "0"),
    ("access", "FORCE_NAT", "192.0.2.10 22"),
    ("access", "FORCE_SNAT", "192.0.2.1"),
    ("access", "ACCESS_EXPIRE", "12/31/2030"),
    ("access", "CMD_CYCLE_OPEN", "/usr/sbin/nft add element inet fw4 s { $SRC }"),
    ("access", "SOME_FUTURE_VARIABLE", "anything at all"),
    ("access", "keytype", "Base 64 key"),  # not written, so not checked
    ("access", "OPEN_PORTS", ""),  # empty = not set
    ("config", "PCAP_INTF", "eth1"),
    ("config", "PCAP_INTF", "pppoe-wan"),
    ("config", "PCAP_INTF", "eth0.2"),
    ("config", "MAX_SPA_PACKET_AGE", "120"),
    ("config", "UDPSERV_PORT", "62201"),
    ("config", "ENABLE_NAT_DNS", "y"),
    ("config", "SYSLOG_FACILITY", "log_local3"),
    ("config", "NFT_TABLE", "inet fw4"),
    ("config", "PCAP_FILTER", "udp port 62201"),
    ("global", "uci_enabled", "1"),
    ("global", "uci_enabled", "off"),
    ("network", "network", "wan"),
    ("network", "network", "wan_6"),
    ("network", "unrelated", "anything"),
])
def test_validate_option_accepts(section: str, name: str, value: str | list[str]) -> None:
    assert validate_option(section, name, value) is None


@pytest.mark.parametrize(("section", "name", "value", "words"), [
    ("access", "SOURCE", "0.0.0.0/0", "not an address list"),
    ("access", "SOURCE", "192.0.2.0/24 10.0.0.1", "not an address list"),
    ("access", "OPEN_PORTS", "tcp/123453", "not a port list"),
    ("access", "OPEN_PORTS", "22", "not a port list"),
    ("access", "OPEN_PORTS", "icmp/1", "not a port list"),
    ("access", "OPEN_PORTS", ["tcp/22", ""], "empty list item"),
    ("access", "KEY_BASE64", "not base64!", "not base64"),
    ("access", "KEY_BASE64", "QUFB" * 11 + "QQ==", "must be 1..32 bytes"),
    ("access", "HMAC_KEY_BASE64", "QUFB" * 44, "must be 1..128 bytes"),
    ("access", "KEY", "x" * 33, "at most 32 bytes"),
    ("access", "KEY", " padded", "white space"),
    ("access", "KEY", "__CHANGEME__", "placeholder"),
    ("access", "KEY_BASE64", "__changeme__", "placeholder"),
    ("access", "HMAC_KEY", "CHANGEME", "placeholder"),
    ("access", "KEY", ["a", "b"], "not a UCI list"),
    ("access", "HMAC_DIGEST_TYPE", "sha3", "not one of"),
    ("access", "ENCRYPTION_MODE", "asymmetric", "not one of"),
    ("access", "FW_ACCESS_TIMEOUT", "30s", "whole number"),
    ("access", "FW_ACCESS_TIMEOUT", "8388609", "whole number"),
    ("access", "FW_ACCESS_TIMEOUT", "-1", "whole number"),
    ("access", "REQUIRE_SOURCE_ADDRESS", "maybe", "not a boolean"),
    ("access", "FORCE_NAT", "192.0.2.10", "<IPv4 address> <port>"),
    ("access", "FORCE_SNAT", "host.example", "not an IPv4 address"),
    ("access", "ACCESS_EXPIRE", "next year", "MM/DD/YYYY"),
    ("access", "CMD_CYCLE_OPEN", "x" * 256, "shorter than 256"),
    ("config", "PCAP_INTF", "eth1;", "contains ';'"),
    ("config", "PCAP_INTF", "a-very-long-device-name", "not a network device name"),
    ("config", "PCAP_INTF", "eth 1", "not a network device name"),
    ("config", "MAX_SPA_PACKET_AGE", "0", "1..100000"),
    ("config", "UDPSERV_PORT", "65536", "1..65535"),
    ("config", "SYSLOG_FACILITY", "LOG_USER", "not one of"),
    ("config", "NFT_TABLE", "bridge x", "<ip|inet> <table name>"),
    ("config", "ACCESS_FOLDER", "/etc/fwknop/access.d", "writes access.conf"),
    ("config", "ACCESS_FILE", "/etc/fwknop/access.conf", "writes access.conf"),
    ("config", "FWKNOP_RUN_DIR", "run", "absolute path"),
    ("global", "uci_enabled", "Y", "not a UCI boolean"),
    ("network", "network", "wan 6", "logical network"),
    ("network", "network", "wan; reboot", "contains ';'"),
])
def test_validate_option_refuses(section: str, name: str, value: str | list[str],
                                 words: str) -> None:
    message = validate_option(section, name, value)
    assert message is not None and words in message, message
    assert "\n" not in message


@pytest.mark.parametrize("value", [
    "tcp/22\nENABLE_CMD_EXEC Y",
    "tcp/22\rENABLE_CMD_EXEC Y",
    "tcp/22;ENABLE_CMD_EXEC Y",
    "tcp/22\x00",
    "tcp/22\x1b[2J",
])
@pytest.mark.parametrize(("section", "name"), [
    ("access", "OPEN_PORTS"), ("access", "SOME_FUTURE_VARIABLE"), ("access", "KEY"),
    ("config", "PCAP_FILTER"), ("config", "ANYTHING_NEW"),
])
def test_validate_option_every_value_is_one_line(value: str, section: str, name: str) -> None:
    """A value that could end the line or start another one is refused for
    every option, known or not: nothing can be injected into the files."""
    message = validate_option(section, name, value)
    assert message is not None
    assert any(word in message for word in ("line break", "';'", "NUL", "control character"))
    assert validate_option(section, name, [value]) is not None


def test_validate_option_newline_message_is_clear() -> None:
    message = validate_option("access", "OPEN_PORTS", "tcp/22\nENABLE_CMD_EXEC Y")
    assert message is not None and "line break" in message and "one line" in message


def test_validate_option_never_echoes_a_key() -> None:
    secret = "s3cr3t-" * 6
    for name in ("KEY", "HMAC_KEY", "KEY_BASE64", "HMAC_KEY_BASE64"):
        message = validate_option("access", name, secret)
        assert message is None or "s3cr3t" not in message


@pytest.mark.parametrize(("value", "written"), [
    ("Y", "Y"), ("y", "Y"), ("yes", "Y"), ("1", "Y"), ("on", "Y"), ("TRUE", "Y"),
    ("N", "N"), ("n", "N"), ("no", "N"), ("0", "N"), ("off", "N"), ("false", "N"),
])
def test_normalize_value_bool_is_written_as_y_or_n(value: str, written: str) -> None:
    assert normalize_value("access", "ENABLE_CMD_EXEC", value) == written
    assert normalize_value("config", "ENABLE_UDP_SERVER", value) == written


def test_normalize_value_joins_lists_and_keeps_text() -> None:
    assert normalize_value("access", "OPEN_PORTS", ["tcp/22", "udp/53"]) == "tcp/22, udp/53"
    assert normalize_value("access", "SOURCE", "ANY") == "ANY"
    assert normalize_value("config", "PCAP_FILTER", "udp port 62201") == "udp port 62201"


def test_option_datatype_names_and_written_options() -> None:
    assert option_datatype("access", "OPEN_PORTS") is validate.PORT_LIST
    assert option_datatype("access", "SOURCE") is validate.ADDRESS_LIST
    assert option_datatype("access", "NEW_THING") is validate.TEXT
    assert option_datatype("access", "keytype") is None
    assert option_datatype("access", "Key") is None
    assert option_datatype("config", "ENABLE_NAT_DNS") is validate.BOOL
    assert option_datatype("global", "uci_enabled") is validate.UCI_BOOL
    assert option_datatype("other", "ANYTHING") is None
    spec = option_datatype("config", "UDPSERV_PORT")
    assert spec is not None and spec.name == "uinteger(1-65535)"


def test_config_ranges_match_the_daemon() -> None:
    """The uinteger ranges are the ones fwknopd (server_conf) enforces."""
    for name, (low, high) in server_conf._RANGES.items():
        assert validate_option("config", name, str(low)) is None
        assert validate_option("config", name, str(high)) is None
        assert validate_option("config", name, str(high + 1)) is not None
        if low > 0:
            assert validate_option("config", name, str(low - 1)) is not None


def test_is_placeholder() -> None:
    for value in ("__CHANGEME__", "__changeme__", "CHANGEME", "changeme", " CHANGEME "):
        assert is_placeholder(value)
    for value in ("", KEY, "CHANGEME2", "__CHANGE__"):
        assert not is_placeholder(value)


def _errors(text: str) -> list[str]:
    return [str(e) for e in validate_package(parse(text))]


def test_validate_package_names_section_and_option() -> None:
    errors = _errors(f"""
config global
	option uci_enabled '1'
config access
	option SOURCE 'ANY'
	option KEY_BASE64 '{KEY}'
config access
	option SOURCE 'ANY'
	option KEY_BASE64 '{KEY}'
	option OPEN_PORTS 'tcp/99999'
""")
    assert len(errors) == 1
    assert errors[0].startswith("@access[1].OPEN_PORTS: ")


def test_validate_package_named_section_ref() -> None:
    errors = _errors(f"""
config access 'laptop'
	option SOURCE 'nowhere'
	option KEY_BASE64 '{KEY}'
""")
    assert errors == [e for e in errors if e.startswith("laptop.SOURCE: ")] and errors


def test_validate_package_whole_section_rules() -> None:
    errors = _errors(f"""
config access
	option OPEN_PORTS 'tcp/22'
	option KEY_BASE64 '{KEY}'
config access
	option SOURCE 'ANY'
config access
	option SOURCE 'ANY'
	option KEY 'plain'
	option KEY_BASE64 '{KEY}'
config access
	option SOURCE 'ANY'
	option KEY_BASE64 '{KEY}'
	option HMAC_KEY_BASE64 '{KEY}'
""")
    assert any(e.startswith("@access[0].SOURCE: is missing") for e in errors)
    assert any(e.startswith("@access[1].KEY_BASE64: is missing") for e in errors)
    assert any(e.startswith("@access[2].KEY_BASE64: KEY and KEY_BASE64 are both set")
               for e in errors)
    assert any(e.startswith("@access[3].HMAC_KEY_BASE64: is the same as the encryption key")
               for e in errors)
    assert len(errors) == 4


def test_validate_package_plain_and_base64_keys_compared_decoded() -> None:
    errors = _errors("""
config access
	option SOURCE 'ANY'
	option KEY 'abc'
	option HMAC_KEY_BASE64 'YWJj'
""")
    assert errors == [("@access[0].HMAC_KEY_BASE64: is the same as the encryption key; the two "
                       "keys must differ")]


def test_validate_package_needs_an_access_section() -> None:
    errors = _errors("config global\n\toption uci_enabled '1'\n")
    assert len(errors) == 1 and "no access section" in errors[0]


def test_validate_package_shipped_placeholders() -> None:
    errors = _errors("""
config access
	option SOURCE 'ANY'
	option HMAC_KEY '__CHANGEME__'
	option KEY '__CHANGEME__'
""")
    assert [e.split(":")[0] for e in errors] == ["@access[0].HMAC_KEY", "@access[0].KEY"]
    assert all("keys-init" in e for e in errors)


def test_validation_error_text() -> None:
    assert str(ValidationError("@access[1]", "OPEN_PORTS", "bad")) == "@access[1].OPEN_PORTS: bad"
    assert str(ValidationError("@access[0]", "", "bad")) == "@access[0]: bad"
