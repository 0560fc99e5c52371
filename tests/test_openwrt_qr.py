# The Fwknop2 QR text (openwrt/qr.py): LuCI's exact grammar (openwrt.md 2.3)
# and the warnings for what Fwknop2 would import wrongly (3.1).

from __future__ import annotations

import pytest

from fwknopd_uci.openwrt.qr import qr_text, qr_tokens, qr_warnings
from fwknopd_uci.openwrt.uci import UciSection, parse

KEY = "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc="
HMAC = ("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1"
        "lqQXuQ==")


def section(**options: str | list[str]) -> UciSection:
    return UciSection("access", None, dict(options))


def fwknop2_import(text: str) -> dict[str, str]:
    """Fwknop2's reader: split on one space, then on ':', take field 2."""
    found: dict[str, str] = {}
    for token in text.split(" "):
        fields = token.split(":")
        if fields[0].upper() in ("KEY_BASE64", "KEY", "HMAC_KEY_BASE64", "HMAC_KEY"):
            found[fields[0].upper()] = fields[1]
    return found


def test_qr_text_base64_keys_exact() -> None:
    text = qr_text(section(SOURCE="ANY", HMAC_KEY_BASE64=HMAC, KEY_BASE64=KEY))
    assert text == f"KEY_BASE64:{KEY} HMAC_KEY_BASE64:{HMAC}"
    assert fwknop2_import(text) == {"KEY_BASE64": KEY, "HMAC_KEY_BASE64": HMAC}


def test_qr_text_order_and_plain_keys() -> None:
    sec = section(HMAC_KEY="hmacpass", KEY="keypass", HMAC_KEY_BASE64=HMAC, KEY_BASE64=KEY)
    assert qr_text(sec) == (f"KEY_BASE64:{KEY} KEY:keypass HMAC_KEY_BASE64:{HMAC} "
                            "HMAC_KEY:hmacpass")
    assert qr_text(section(KEY="keypass", HMAC_KEY="hmacpass")) == "KEY:keypass HMAC_KEY:hmacpass"
    assert qr_text(section(KEY_BASE64=KEY)) == f"KEY_BASE64:{KEY}"


@pytest.mark.parametrize("options", [
    {}, {"SOURCE": "ANY"}, {"KEY": "__CHANGEME__", "HMAC_KEY": "__CHANGEME__"},
    {"KEY": "CHANGEME"}, {"KEY": ""}, {"KEY": "two\nlines"}, {"KEY": ["a", "list"]},
])
def test_qr_text_leaves_out_what_is_no_key(options: dict[str, str | list[str]]) -> None:
    assert qr_text(section(**options)) == ""


def test_qr_text_never_has_empty_values_or_stray_spaces() -> None:
    text = qr_text(section(KEY_BASE64="", KEY="pass", HMAC_KEY_BASE64="__CHANGEME__",
                           HMAC_KEY="hmac"))
    assert text == "KEY:pass HMAC_KEY:hmac"
    assert not text.startswith(" ") and not text.endswith((" ", "\n")) and "  " not in text
    assert all(value for _, value in qr_tokens(section(KEY="pass", HMAC_KEY="")))


def test_qr_text_keytype_leftover_is_ignored() -> None:
    pkg = parse(f"""
config access
	option SOURCE 'ANY'
	option keytype 'Base 64 key'
	option hkeytype 'Base 64 key'
	option KEY_BASE64 '{KEY}'
	option HMAC_KEY_BASE64 '{HMAC}'
""")
    assert qr_text(pkg.sections[0]) == f"KEY_BASE64:{KEY} HMAC_KEY_BASE64:{HMAC}"
    assert qr_warnings(pkg.sections[0]) == []


@pytest.mark.parametrize(("name", "value"), [
    ("KEY", "pass phrase"), ("KEY", "pass:phrase"),
    ("HMAC_KEY", "hm ac-1"), ("HMAC_KEY", "hm:ac-2"),
])
def test_qr_warnings_space_or_colon_in_plain_key(name: str, value: str) -> None:
    sec = section(**{name: value})
    warnings = qr_warnings(sec)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{name} contains a space or ':'")
    assert "Fwknop2" in warnings[0]
    assert value not in warnings[0]  # the key itself is not repeated
    assert fwknop2_import(qr_text(sec))[name] != value  # what the warning is about


def test_qr_warnings_both_kinds_of_one_key() -> None:
    warnings = qr_warnings(section(KEY_BASE64=KEY, KEY="pass"))
    assert len(warnings) == 1 and "both set" in warnings[0]


def test_qr_warnings_none_for_clean_base64() -> None:
    assert qr_warnings(section(KEY_BASE64=KEY, HMAC_KEY_BASE64=HMAC)) == []
    assert qr_warnings(section(KEY="__CHANGEME__")) == []


def test_qr_warnings_line_break_and_list() -> None:
    warnings = qr_warnings(section(KEY="a\nb", HMAC_KEY=["x"]))
    assert [w.split()[0] for w in warnings] == ["KEY", "HMAC_KEY"]


def test_qr_base64_value_cannot_smuggle_a_token() -> None:
    """A *_BASE64 value with a space (or tab, ':') is left out, with a warning."""
    from fwknopd_uci.openwrt.qr import qr_text, qr_warnings
    from fwknopd_uci.openwrt.uci import parse

    pkg = parse("config access\n\toption SOURCE 'ANY'\n"
                "\toption KEY_BASE64 'QUJD HMAC_KEY_BASE64:ZXZpbA=='\n"
                "\toption HMAC_KEY_BASE64 'aG1hYw=='\n")
    section = pkg.sections_of("access")[0]
    assert qr_text(section) == "HMAC_KEY_BASE64:aG1hYw=="
    assert any("KEY_BASE64 is not valid base64" in w for w in qr_warnings(section))
