# Address lists (spa-protocol.md 8.2), port lists (6.5) and the C-style
# integer reader (1.7) of fwknopd_uci.config.lists.

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from fwknopd_uci.config import AddressList, parse_address_list, parse_port_list
from fwknopd_uci.config.lists import c_strtol, parse_int


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def test_config_lists_any_matches_everything_case_insensitive() -> None:
    for text in ("ANY", "any", "Any", " ANY "):
        parsed = parse_address_list(text)
        assert parsed.any
        assert parsed.networks == ()
        assert parsed.matches(ip("203.0.113.9")) and parsed.matches(ip("0.0.0.0"))


def test_config_lists_text_is_kept_as_written() -> None:
    text = "4.3.2.0/24, 127.0.0.0/24,10.10.10.10"
    assert parse_address_list(text).text == text


def test_config_lists_cidr_host_and_dotted_mask() -> None:
    parsed = parse_address_list("10.0.0.0/8, 192.0.2.7, 172.16.0.0/255.240.0.0")
    assert not parsed.any
    assert parsed.networks == (IPv4Network("10.0.0.0/8"), IPv4Network("192.0.2.7/32"),
                               IPv4Network("172.16.0.0/12"))
    assert parsed.matches(ip("10.200.3.4"))
    assert parsed.matches(ip("192.0.2.7")) and not parsed.matches(ip("192.0.2.8"))
    assert parsed.matches(ip("172.31.255.255")) and not parsed.matches(ip("172.32.0.0"))


def test_config_lists_dotted_mask_equals_cidr() -> None:
    assert parse_address_list("192.168.1.0/255.255.255.0").networks == \
        parse_address_list("192.168.1.0/24").networks


def test_config_lists_host_bits_are_masked_off() -> None:
    """8.2: the match is (ip & mask) == (net & mask)."""
    parsed = parse_address_list("10.1.2.3/8")
    assert parsed.networks == (IPv4Network("10.0.0.0/8"),)
    assert parsed.matches(ip("10.9.9.9"))


def test_config_lists_dotted_all_zero_mask_matches_everything() -> None:
    """Only the CIDR form /0 is refused; /0.0.0.0 is a legal (if odd) mask."""
    assert parse_address_list("1.2.3.4/0.0.0.0").matches(ip("198.51.100.1"))


@pytest.mark.parametrize("text, expected", [
    ("10.1", "10.0.0.1"),            # last component fills the remaining bytes
    ("10.1.2", "10.1.0.2"),
    ("167772161", "10.0.0.1"),
    ("0x7f.1", "127.0.0.1"),         # hex component
    ("010.0.0.1", "8.0.0.1"),        # leading zero: octal, as inet_aton reads it
    ("0.0.0.0", "0.0.0.0"),
])
def test_config_lists_inet_aton_forms(text: str, expected: str) -> None:
    assert parse_address_list(text).networks == (IPv4Network(f"{expected}/32"),)


@pytest.mark.parametrize("text, reason", [
    ("0.0.0.0/0", "1..32"),                      # 14.22: use ANY instead
    ("10.0.0.0/33", "1..32"),
    ("123.123.123.1234/24", "longer than 15"),   # 13.3 fuzzing_source_access.conf
    ("A0.10.10.10", "not an IPv4 address"),      # 13.3 fuzzing_source_access.conf
    ("1.2.3.256", "not an IPv4 address"),
    ("1.2.3.4.5", "not an IPv4 address"),
    ("08.1.1.1", "not an IPv4 address"),         # 8 is not an octal digit
    ("1..2.3", "not an IPv4 address"),
    ("1.2.3.", "not an IPv4 address"),
    ("+1.2.3.4", "not an IPv4 address"),
    ("1_0.0.0.1", "not an IPv4 address"),
    ("1.2.3.4/", "missing mask"),
    ("1.2.3.4/123", "neither"),                  # 3..6 chars: no valid mask form
    ("1.2.3.4/255.0.255.0", "not contiguous"),
    ("1.2.3.4/255.255.255.2555", "neither"),
    ("ANY,", "empty entry"),
    (",ANY", "empty entry"),
    ("", "empty entry"),
])
def test_config_lists_bad_address_entries(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_address_list(text)


def test_config_lists_whitespace_around_items_is_ignored() -> None:
    parsed = parse_address_list("  1.2.3.0/24 ,\t5.6.7.8  ")
    assert parsed.networks == (IPv4Network("1.2.3.0/24"), IPv4Network("5.6.7.8/32"))


def test_config_lists_address_list_is_frozen() -> None:
    parsed = parse_address_list("ANY")
    with pytest.raises(AttributeError):
        parsed.any = False  # type: ignore[misc]
    assert isinstance(parsed, AddressList)


def test_config_lists_ports() -> None:
    assert parse_port_list("tcp/22, udp/53") == (("tcp", 22), ("udp", 53))
    assert parse_port_list("TCP/22,Udp/6001") == (("tcp", 22), ("udp", 6001))
    assert parse_port_list(" tcp/1 , tcp/65535") == (("tcp", 1), ("tcp", 65535))
    assert parse_port_list("tcp/22,tcp/22") == (("tcp", 22), ("tcp", 22))


@pytest.mark.parametrize("text, reason", [
    ("tcp/123453", "1..65535"),        # 13.3 fuzzing_open_ports_access.conf
    ("tcp/65536", "1..65535"),
    ("tcp/0", "1..65535"),             # libfko: a client can only ask for 1..65535
    ("udp/00", "1..65535"),
    ("A" * 40, "need <proto>/<port>"),  # 13.3 fuzzing_restrict_ports_access.conf
    ("icmp/1", "tcp or udp"),
    ("sctp/22", "tcp or udp"),
    ("tcp/22-25", "1..65535"),
    ("tcp/", "1..65535"),
    ("tcp/-1", "1..65535"),
    ("/22", "tcp or udp"),
    ("tcp/22,", "empty entry"),
])
def test_config_lists_bad_port_entries(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_port_list(text)


@pytest.mark.parametrize("text, value", [
    ("123", 123), ("123abc", 123), ("abc", 0), ("", 0), ("  +5", 5), ("-3", -3),
    ("\t42 ", 42), ("2147483647", 2147483647), ("-2147483648", -2147483648),
    ("2147483648", None), ("99999999999999999999999", None),
])
def test_config_lists_c_strtol(text: str, value: int | None) -> None:
    assert c_strtol(text) == value


def test_config_lists_c_strtol_wider_limit() -> None:
    assert c_strtol("4102444800", limit=2**63 - 1) == 4102444800


@pytest.mark.parametrize("text, value", [
    ("123", 123), ("+5", 5), ("-3", -3), ("007", 7), ("-0", 0),
    ("123abc", None), ("abc", None), ("", None), (" 5", None), ("5 ", None), ("0x10", None),
    ("1_000", None), ("٣", None), ("+", None), ("1e3", None),
])
def test_config_lists_parse_int_is_strict(text: str, value: int | None) -> None:
    """Unlike c_strtol (the reference), no digits or trailing text is None."""
    assert parse_int(text) == value


@pytest.mark.parametrize("text", ["10.0.0.0/8, NcjhQ3vq9n8fLmP2xYzAbCdEfGhIjKlMnOpQrStUvGY=",
                                  "ANY KEY_BASE64 NcjhQ3vq9n8fLmP2", "1.2.3.4/NcjhQ3vq9n8fL"])
def test_config_lists_address_errors_do_not_quote_the_entry(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_address_list(text)
    assert "NcjhQ3vq" not in str(info.value) and "entry" in str(info.value)


def test_config_lists_port_errors_name_the_entry_by_position() -> None:
    with pytest.raises(ValueError, match="entry 2 is invalid") as info:
        parse_port_list("tcp/22, tcp/NcjhQ3vq9n8fLmP2")
    assert "NcjhQ3vq" not in str(info.value)
