# The plaintext decoder and field validators (spa-protocol.md 1.4-1.12).
#
# Plaintexts are built by hand here (fields joined with ':', a correct inner
# digest appended), so each rule of fko_decode_spa_data() is hit directly,
# without encryption in the way.

from __future__ import annotations

import pytest

from fwknopd_uci.spa import SpaMessage, SpaRefused, b64_encode_nopad, decode_plaintext
from fwknopd_uci.spa.crypto import digest_b64
from fwknopd_uci.spa.message import (
    is_valid_ipv4_addr,
    validate_access_msg,
    validate_cmd_msg,
    validate_nat_access_msg,
    validate_username,
)

RAND = "1234567890123456"


def b64(text: str | bytes) -> str:
    return b64_encode_nopad(text.encode() if isinstance(text, str) else text)


def plaintext(*fields: str, digest: str = "sha256") -> bytes:
    """Join raw fields and append a correct inner digest."""
    body = ":".join(fields).encode()
    return body + b":" + digest_b64(digest, body).encode()


def access(msg: str = "1.2.3.4,tcp/22", *extra: str, msg_type: str = "1", user: str = "root",
           ts: str = "1700000000", ver: str = "3.0.0", rand: str = RAND) -> bytes:
    return plaintext(rand, b64(user), ts, ver, msg_type, b64(msg), *extra)


def refused(data: bytes) -> str:
    with pytest.raises(SpaRefused) as info:
        decode_plaintext(data)
    return info.value.code


def test_spa_message_decodes_access_message() -> None:
    msg = decode_plaintext(access())
    assert msg == SpaMessage(rand=RAND, username="root", timestamp=1700000000, version="3.0.0",
                             msg_type=1, message="1.2.3.4,tcp/22", nat_access=None,
                             server_auth=None, client_timeout=0, digest_type="sha256")
    assert msg.allow_ip == "1.2.3.4"
    assert msg.access == (("tcp", 22),)
    assert msg.command is None and msg.nat is None


@pytest.mark.parametrize("digest", ["md5", "sha1", "sha256", "sha384", "sha512",
                                    "sha3_256", "sha3_512"])
def test_spa_message_digest_by_length_with_sha3_fallback(digest: str) -> None:
    body = [RAND, b64("root"), "1700000000", "3.0.0", "1", b64("1.2.3.4,tcp/22")]
    assert decode_plaintext(plaintext(*body, digest=digest)).digest_type == digest


def test_spa_message_digest_failures() -> None:
    good = access()
    assert refused(good[:-1] + (b"A" if good[-1:] != b"A" else b"B")) == \
        "DIGEST_VERIFICATION_FAILED"
    assert refused(good[:-2]) == "INVALID_DIGEST_TYPE"  # 41 chars: no such digest
    # The digest covers the fields: change one, keep the old digest.
    assert refused(good.replace(b"1700000000", b"1700000001")) == "DIGEST_VERIFICATION_FAILED"


def test_spa_message_size_printable_and_field_count() -> None:
    assert refused(b"1234567890123456:a:b:c:d:e") == "DECODE_MSGLEN_VALIDFAIL"  # < 36
    assert refused(b"1" * 1500) == "DECODE_MSGLEN_VALIDFAIL"
    for bad in (b"\t", b"\x7f", b"\x80", b"\x00"):
        assert refused(access(ver="3.0" + bad.decode("latin-1"))) == "DECODE_NON_ASCII"
    assert refused(b"1234567890123456:" + b"x" * 40 + b":a:b:c:d") == "DECODE_LT_MIN_FIELDS"


def test_spa_message_too_many_colons_refused() -> None:
    """More than 11 separators: the 'digest' keeps colons and fails (1.12 caveat)."""
    body = [RAND, b64("root"), "1700000000", "3.0.0", "1", b64("1.2.3.4,tcp/22")] + ["x"] * 7
    assert refused(plaintext(*body)) in {"INVALID_DIGEST_TYPE", "DIGEST_VERIFICATION_FAILED"}


def test_spa_message_rand_field() -> None:
    assert refused(access(rand="123456789012345")) == "DECODE_RAND_MISSING"
    # The decoder itself keeps the first 16 chars of a longer value (the
    # decryptor's digit/colon check is what refuses it in practice, 2.8).
    assert decode_plaintext(access(rand=RAND + "99")).rand == RAND


VALID_USERS = ["test", "root", "test-test", "test_test", "part1 part2", "U%ER", "-1", "00001",
               "00$01", "-user", "123%123", "a.b@c!#'()&^~{}`", "A" * 48]
INVALID_USERS = [",1", "123>123", "123<123", "123\x10", "*-user", "?user", "User+", "U+er",
                 "part1|part2", "a:b", 'q"q', "a/b", "a\\b", "[x]", "a;b", "a=b", "\x7f",
                 "é"]


@pytest.mark.parametrize("user", VALID_USERS)
def test_spa_message_username_valid(user: str) -> None:
    """1.6 and the test suite's list of usernames that must pass."""
    assert validate_username(user)
    assert decode_plaintext(access(user=user)).username == user


@pytest.mark.parametrize("user", INVALID_USERS)
def test_spa_message_username_invalid(user: str) -> None:
    assert not validate_username(user)
    assert refused(access(user=user)) == "DECODE_USERNAME_VALIDFAIL"


def test_spa_message_username_field_limits() -> None:
    assert refused(plaintext(RAND, "", "1700000000", "3.0.0", "1", b64("1.2.3.4,tcp/22"))) \
        == "DECODE_USERNAME_MISSING"
    assert refused(access(user="A" * 49)) == "DECODE_USERNAME_TOOBIG"  # 1.6: 66 b64 chars
    assert refused(plaintext(RAND, "cm9v*dA", "1700000000", "3.0.0", "1",
                             b64("1.2.3.4,tcp/22"))) == "DECODE_USERNAME_DECODEFAIL"
    assert refused(access(user="")) == "DECODE_USERNAME_MISSING"
    # '=' ends a base64 value; it is not an error (1.2).
    assert decode_plaintext(plaintext(RAND, "QQ==", "1700000000", "3.0.0", "1",
                                      b64("1.2.3.4,tcp/22"))).username == "A"
    # 1.2: a decoded NUL ends the C string.
    assert decode_plaintext(access(user="root\0<>")).username == "root"
    assert refused(access(user="\0root")) == "DECODE_USERNAME_VALIDFAIL"


@pytest.mark.parametrize(("field", "value"), [
    ("1700000000", 1700000000), ("0", 0), ("  17", 17), ("+17", 17), ("17abc", 17),
    ("abc", 0), ("-0", 0), ("2147483647", 2**31 - 1), ("000000000042", 42),
])
def test_spa_message_timestamp_strtol(field: str, value: int) -> None:
    """1.7: strtol semantics (whitespace, sign, trailing garbage, no digits = 0)."""
    assert decode_plaintext(access(ts=field)).timestamp == value


@pytest.mark.parametrize(("field", "code"), [
    ("-1", "DECODE_TIMESTAMP_DECODEFAIL"), ("2147483648", "DECODE_TIMESTAMP_DECODEFAIL"),
    ("999999999999", "DECODE_TIMESTAMP_DECODEFAIL"), ("1234567890123", "DECODE_TIMESTAMP_TOOBIG"),
    ("", "DECODE_TIMESTAMP_MISSING"),
])
def test_spa_message_timestamp_refused(field: str, code: str) -> None:
    assert refused(access(ts=field)) == code


def test_spa_message_version_free_form() -> None:
    for version in ("1.9.12", "2.0", "anything", "x"):
        assert decode_plaintext(access(ver=version)).version == version
    assert refused(access(ver="123456789")) == "DECODE_VERSION_TOOBIG"
    assert refused(access(ver="")) == "DECODE_VERSION_MISSING"


@pytest.mark.parametrize(("field", "code"), [
    ("7", "DECODE_MSGTYPE_DECODEFAIL"), ("-1", "DECODE_MSGTYPE_DECODEFAIL"),
    ("10", "DECODE_MSGTYPE_DECODEFAIL"), ("255", "DECODE_MSGTYPE_TOOBIG"),
    ("", "DECODE_MSGTYPE_MISSING"),
])
def test_spa_message_type_refused(field: str, code: str) -> None:
    assert refused(access(msg_type=field)) == code


def test_spa_message_type_strtol_quirks() -> None:
    """1.7: "1x" is 1; no digits is 0 (a command, so its message must be one)."""
    assert decode_plaintext(access(msg_type="1x")).msg_type == 1
    assert decode_plaintext(access(msg_type=" 1")).msg_type == 1
    msg = decode_plaintext(access("1.2.3.4,tcp/22", msg_type="x"))
    assert msg.msg_type == 0 and msg.command == "tcp/22"


def test_spa_message_field_count_per_type() -> None:
    """1.11: at most 2 / 3 / 4 ':' after the type field."""
    assert refused(access("1.2.3.4,tcp/22", b64("a"), b64("b"))) == "DECODE_WRONG_NUM_FIELDS"
    assert refused(access("1.2.3.4,tcp/22", b64("1.1.1.1,22"), b64("a"), "5", msg_type="2")) \
        == "DECODE_WRONG_NUM_FIELDS"
    assert refused(access("1.2.3.4,tcp/22", b64("1.1.1.1,22"), b64("a"), "5", "6",
                          msg_type="4")) == "DECODE_WRONG_NUM_FIELDS"


VALID_ACCESS = ["1.2.3.4,tcp/22", "1.2.3.4,udp/53,tcp/22", "0.0.0.0,tcp/1",
                "1.2.3.4,tcp/65535", "1.2.3.4,tcp/00022", "010.0.0.1,tcp/22",
                "255.255.255.255,udp/1"]
INVALID_ACCESS = ["1.2.3.4", "1.2.3.4,", "1.2.3.4,tcp/22,", "1.2.3.4,TCP/22", "1.2.3.4,icmp/0",
                  "1.2.3.4,none/0", "1.2.3.4,tcp/0", "1.2.3.4,tcp/65536", "1.2.3.4,tcp/123456",
                  "1.2.3.4,tcp/-33", "1.2.3.4,tcp/", "1.2.3.4,/22", "1.2.3.4,tcpx/22",
                  "1.2.3.4,tcp/22x", "1.2.3.4,tcp,udp/53", "256.1.1.1,tcp/22", "1.2.3,tcp/22",
                  "1.2.3.4.5,tcp/22", "08.1.1.1,tcp/22", "1..2.3,tcp/22", " 1.2.3.4,tcp/22",
                  "1.2.3.4 ,tcp/22", "\u0661.2.3.4,tcp/22", "1.2.3.4,tcp/\uff12\uff12",
                  "1.2.3.4,tcp/2_2", "1" * 136 + ".0.0.1,tcp/22", "1.2.3.4,sctp/22",
                  "1.2.3.4,tcp/22,udp"]


@pytest.mark.parametrize("message", VALID_ACCESS)
def test_spa_message_access_valid(message: str) -> None:
    assert validate_access_msg(message)
    assert decode_plaintext(access(message)).message == message


@pytest.mark.parametrize("message", INVALID_ACCESS)
def test_spa_message_access_invalid(message: str) -> None:
    """1.4, including the Unicode digits Python's isdigit()/int() would accept."""
    assert not validate_access_msg(message)
    if len(b64(message)) <= 256:
        assert refused(access(message)) == "DECODE_ACCESS_VALIDFAIL"


def test_spa_message_access_pairs() -> None:
    msg = decode_plaintext(access("10.0.0.2,tcp/22,udp/53,tcp/00080"))
    assert msg.access == (("tcp", 22), ("udp", 53), ("tcp", 80))


def test_spa_message_access_nul_truncates() -> None:
    """1.2: the decoded message is a C string; text after a NUL is not seen."""
    assert decode_plaintext(access("1.2.3.4,tcp/22\0garbage")).message == "1.2.3.4,tcp/22"


def test_spa_message_command() -> None:
    msg = decode_plaintext(access("1.2.3.4,echo hi > /tmp/x", msg_type="0"))
    assert (msg.msg_type, msg.command, msg.access) == (0, "echo hi > /tmp/x", ())
    for bad in ("1.2.3.4,", "1.2.3.4", "x,uptime", "1.2.3.256,ls"):
        assert not validate_cmd_msg(bad)
        assert refused(access(bad, msg_type="0")) == "DECODE_MESSAGE_VALIDFAIL"


def test_spa_message_command_non_utf8_bytes_round_trip() -> None:
    raw = b"1.2.3.4,printf '\xff\xfe'"
    body = [RAND, b64("root"), "1700000000", "3.0.0", "0", b64(raw)]
    command = decode_plaintext(plaintext(*body)).command
    assert command is not None
    assert command.encode("utf-8", "surrogateescape") == raw[8:]


def test_spa_message_message_field_limits() -> None:
    assert refused(plaintext(RAND, b64("root"), "1", "3.0.0", "1", "")) \
        == "DECODE_MESSAGE_MISSING"
    assert refused(plaintext(RAND, b64("root"), "1", "3.0.0", "1", "A" * 257)) \
        == "DECODE_MESSAGE_TOOBIG"
    assert refused(plaintext(RAND, b64("root"), "1", "3.0.0", "1", "MS4y*")) \
        == "DECODE_MESSAGE_DECODEFAIL"


VALID_NAT = ["192.168.10.2,22", "bad%host,22", "host.example,65535", "a" * 70 + ",1"]
INVALID_NAT = ["999.1.1.1,22,55000", "host,", "host", "ho st,22", "host/x,22", "host?,22",
               "ho'st,22", 'ho"st,22', "ho\\st,22", "host,0", "host,65536", "a" * 71 + ",22",
               "host,22a", "host,123456", "host,\uff12"]


@pytest.mark.parametrize("nat", VALID_NAT)
@pytest.mark.parametrize("msg_type", ["2", "5"])
def test_spa_message_nat_valid(nat: str, msg_type: str) -> None:
    assert validate_nat_access_msg(nat)
    msg = decode_plaintext(access("1.2.3.4,tcp/22", b64(nat), msg_type=msg_type))
    assert msg.nat_access == nat
    assert msg.nat == (nat.rpartition(",")[0], int(nat.rpartition(",")[2]))


@pytest.mark.parametrize("nat", INVALID_NAT)
def test_spa_message_nat_invalid(nat: str) -> None:
    assert not validate_nat_access_msg(nat)
    assert refused(access("1.2.3.4,tcp/22", b64(nat), msg_type="2")) \
        == "DECODE_NATACCESS_VALIDFAIL"


def test_spa_message_nat_required() -> None:
    for msg_type in ("2", "4", "5", "6"):
        assert refused(access(msg_type=msg_type)) == "DECODE_NATACCESS_MISSING"
    assert refused(access("1.2.3.4,tcp/22", "A" * 257, msg_type="2")) == "DECODE_NATACCESS_TOOBIG"
    assert refused(access("1.2.3.4,tcp/22", "a*b", msg_type="2")) \
        == "DECODE_NATACCESS_DECODEFAIL"


def test_spa_message_server_auth_and_timeout() -> None:
    """1.9: types 0/1/2/5 take the rest as server auth; 3/4/6 split at ':'."""
    nat = b64("192.168.1.1,22")
    cases = [
        (access("1.2.3.4,tcp/22", b64("crypt,pw")), "crypt,pw", 0),
        (access("1.2.3.4,ls", b64("crypt,pw"), msg_type="0"), "crypt,pw", 0),
        (access("1.2.3.4,tcp/22", nat, b64("pw"), msg_type="2"), "pw", 0),
        (access("1.2.3.4,tcp/22", "30", msg_type="3"), None, 30),
        (access("1.2.3.4,tcp/22", b64("pw"), "30", msg_type="3"), "pw", 30),
        (access("1.2.3.4,tcp/22", nat, b64("pw"), "65536", msg_type="4"), "pw", 65536),
        (access("1.2.3.4,tcp/22", nat, "0", msg_type="6"), None, 0),
        (access("1.2.3.4,tcp/22", "", "7", msg_type="3"), "", 7),
    ]
    for data, auth, timeout in cases:
        msg = decode_plaintext(data)
        assert (msg.server_auth, msg.client_timeout) == (auth, timeout)


@pytest.mark.parametrize(("extra", "msg_type", "code"), [
    ((), "3", "DECODE_TIMEOUT_MISSING"),
    (("3a",), "3", "DECODE_TIMEOUT_VALIDFAIL"),
    ((" 3",), "3", "DECODE_TIMEOUT_VALIDFAIL"),
    (("65537",), "3", "DECODE_TIMEOUT_DECODEFAIL"),
    (("9" * 30,), "3", "DECODE_TIMEOUT_DECODEFAIL"),
    (("a*b", "30"), "3", "DECODE_EXTRA_DECODEFAIL"),
    (("a*b",), "1", "DECODE_SRVAUTH_DECODEFAIL"),
    (("A" * 257,), "1", "DECODE_SRVAUTH_MISSING"),
])
def test_spa_message_server_auth_timeout_refused(extra: tuple[str, ...], msg_type: str,
                                                 code: str) -> None:
    assert refused(access("1.2.3.4,tcp/22", *extra, msg_type=msg_type)) == code


@pytest.mark.parametrize(("text", "ok"), [
    ("1.2.3.4", True), ("0.0.0.0", True), ("255.255.255.255", True), ("010.010.010.010", True),
    ("00.0.0.0", True), ("08.0.0.0", False), ("0377.1.1.1", True), ("0400.1.1.1", False),
    ("1.2.3", False), ("1.2.3.4.", False), (".1.2.3", False), ("1.2.3.256", False),
    ("1.2.3.4x", False), ("1.2.3.-4", False), ("0001.2.3.4", True), ("1.2.3.4444", False),
])
def test_spa_message_ipv4_inet_aton_rules(text: str, ok: bool) -> None:
    assert is_valid_ipv4_addr(text) is ok
