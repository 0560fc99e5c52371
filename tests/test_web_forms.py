# The form <-> UCI mapping (web/forms.py): an unchanged form changes nothing,
# an edit changes exactly its option, nothing is dropped, and errors land at
# the field of the option they name.

from __future__ import annotations

import pytest

from fwknopd_uci.openwrt.uci import dump, parse
from fwknopd_uci.openwrt.validate import validate_package
from fwknopd_uci.web.forms import (
    Extra,
    FormConflict,
    FormError,
    apply,
    form_from_package,
    form_from_post,
    place_errors,
)

KEY = "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc="
HMAC = ("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1"
        "lqQXuQ==")
ODD = f"""\
config global
\toption uci_enabled 'yes'

config access
\toption SOURCE 'ANY'
\toption keytype 'Base 64 key'
\toption KEY_BASE64 '{KEY}'
\toption KEY 'plainpass'
\toption HMAC_KEY_BASE64 '{HMAC}'
\toption HMAC_DIGEST_TYPE 'SHA256'
\toption REQUIRE_SOURCE_ADDRESS 'y'
\tlist OPEN_PORTS 'tcp/22'
\tlist OPEN_PORTS 'udp/53'

config config
\toption ENABLE_IPT_FORWARDING 'yes'
\toption VERBOSE '1'
"""


def roundtrip(text: str) -> str:
    pkg = parse(text)
    apply(form_from_package(pkg), pkg)
    return dump(pkg)


@pytest.mark.parametrize("text", [
    ODD, "", "config global\n", "config access 'named'\n\toption SOURCE 'ANY'\n",
    "config config\n\toption ENABLE_NAT_DNS 'n'\n\toption ENABLE_UDP_SERVER 'maybe'\n",
    "config global\n\toption uci_enabled 'sometimes'\n",
])
def test_web_forms_unchanged_form_changes_nothing(text: str) -> None:
    assert roundtrip(text) == text


def test_web_forms_reads_values_as_the_page_shows_them() -> None:
    form = form_from_package(parse(ODD))
    assert form.uci_enabled == "1"
    stanza = form.stanzas[0]
    assert stanza.key == KEY and stanza.key_type == "base64"
    assert stanza.hmac_key == HMAC and stanza.hmac_key_type == "base64"
    assert stanza.values["REQUIRE_SOURCE_ADDRESS"] == "Y"
    assert stanza.values["OPEN_PORTS"] == "tcp/22, udp/53"
    # The plain KEY set next to KEY_BASE64 is kept as a row: nothing is dropped.
    assert [(e.name, e.value) for e in stanza.extras] == [("keytype", "Base 64 key"),
                                                          ("KEY", "plainpass")]
    assert form.config["ENABLE_IPT_FORWARDING"] == "Y"
    assert form.config["ENABLE_NAT_DNS"] == "Y"  # absent: fwknopd's default is on
    assert [(e.name, e.value) for e in form.config_extras] == [("VERBOSE", "1")]


def test_web_forms_post_keeps_absent_text_fields() -> None:
    pkg = parse(ODD)
    form = form_from_post({"access.0.DESTINATION": ["192.0.2.1"], "uci_enabled": ["1"],
                           "access.0.REQUIRE_SOURCE_ADDRESS": ["Y"],
                           "config.ENABLE_IPT_FORWARDING": ["Y"],
                           "config.ENABLE_NAT_DNS": ["Y"]}, pkg)
    apply(form, pkg)
    section = pkg.sections_of("access")[0]
    assert section.get("DESTINATION") == "192.0.2.1"
    assert section.is_list("OPEN_PORTS")  # untouched: still a list
    assert section.get("KEY") == "plainpass" and section.get("keytype") == "Base 64 key"


def test_web_forms_flags_write_y_and_n_by_meaning() -> None:
    pkg = parse(ODD)
    form = form_from_package(pkg)
    form.stanzas[0].values["REQUIRE_SOURCE_ADDRESS"] = ""  # default off: removed
    form.config["ENABLE_NAT_DNS"] = ""  # default on: written as N
    form.config["ENABLE_UDP_SERVER"] = "Y"
    form.uci_enabled = ""
    apply(form, pkg)
    section = pkg.sections_of("access")[0]
    assert "REQUIRE_SOURCE_ADDRESS" not in section.options
    config = pkg.sections_of("config")[0]
    assert config.get("ENABLE_NAT_DNS") == "N" and config.get("ENABLE_UDP_SERVER") == "Y"
    assert config.get("ENABLE_IPT_FORWARDING") == "yes"  # unchanged meaning, unchanged text
    assert "uci_enabled" not in pkg.sections_of("global")[0].options


def test_web_forms_a_flag_that_is_no_boolean_is_edited_as_text() -> None:
    """A checkbox could only overwrite 'maybe'; as text it is kept (and refused
    by validate.py at its field) until the user writes a boolean or clears it."""
    text = ("config global\n\toption uci_enabled 'sometimes'\n"
            "config config\n\toption ENABLE_UDP_SERVER 'maybe'\n")
    pkg = parse(text)
    form = form_from_package(pkg)
    assert form.uci_enabled == "sometimes" and form.config["ENABLE_UDP_SERVER"] == "maybe"
    unchanged = form_from_post({"config.ENABLE_NAT_DNS": ["Y"]}, pkg)
    assert unchanged.uci_enabled == "sometimes"
    apply(unchanged, pkg)
    assert dump(pkg) == text
    fixed = form_from_post({"uci_enabled": ["1"], "config.ENABLE_UDP_SERVER": [""],
                            "config.ENABLE_NAT_DNS": ["Y"]}, pkg)
    apply(fixed, pkg)
    assert dump(pkg) == "config global\n\toption uci_enabled '1'\nconfig config\n"


def test_web_forms_select_keeps_the_case_of_an_equal_choice() -> None:
    pkg = parse(ODD)
    form = form_from_post({"access.0.HMAC_DIGEST_TYPE": ["sha256"], "uci_enabled": ["1"],
                           "access.0.REQUIRE_SOURCE_ADDRESS": ["Y"],
                           "config.ENABLE_IPT_FORWARDING": ["Y"],
                           "config.ENABLE_NAT_DNS": ["Y"]}, pkg)
    apply(form, pkg)
    assert dump(pkg) == ODD


def test_web_forms_switching_the_key_type_moves_the_key() -> None:
    pkg = parse(f"config access\n\toption SOURCE 'ANY'\n\toption KEY 'plainpass'\n"
                f"\toption HMAC_KEY_BASE64 '{HMAC}'\n")
    form = form_from_package(pkg)
    assert form.stanzas[0].key_type == "plain"
    form.stanzas[0].key_type = "base64"
    form.stanzas[0].key = KEY
    form.stanzas[0].hmac_key_type = "plain"
    form.stanzas[0].hmac_key = "hmac pass"
    apply(form, pkg)
    assert dump(pkg) == (f"config access\n\toption SOURCE 'ANY'\n\toption KEY_BASE64 '{KEY}'\n"
                         "\toption HMAC_KEY 'hmac pass'\n")


def test_web_forms_extra_rows_rename_delete_and_add() -> None:
    pkg = parse("config config\n\toption VERBOSE '1'\n\toption PCAP_FILTER 'udp'\n"
                "\toption SYSLOG_IDENTITY 'fw'\n")
    form = form_from_package(pkg)
    form.config_extras = [Extra("VERBOSE", "VERBOSE", "2"), Extra("PCAP_FILTER", "", ""),
                          Extra("SYSLOG_IDENTITY", "SYSLOG_FACILITY", "LOG_LOCAL0"),
                          Extra("", "ENABLE_PCAP_PROMISC", "Y")]
    applied = apply(form, pkg)
    assert applied.errors == {}
    assert dump(pkg) == ("config config\n\toption VERBOSE '2'\n"
                         "\toption SYSLOG_FACILITY 'LOG_LOCAL0'\n"
                         "\toption ENABLE_PCAP_PROMISC 'Y'\n")


@pytest.mark.parametrize(("extra", "message"), [
    (Extra("", "bad name", "1"), "is not an option name"),
    (Extra("", "", "orphan"), "give the option a name"),
    (Extra("", "PCAP_INTF", "eth0"), "has its own field above"),
    (Extra("", "VERBOSE", "3"), "is listed twice"),
    (Extra("", "NUL_VALUE", "a\x00b"), "NUL"),
])
def test_web_forms_extra_rows_that_cannot_be_written(extra: Extra, message: str) -> None:
    pkg = parse("config config\n\toption VERBOSE '1'\n")
    form = form_from_package(pkg)
    form.config_extras.append(extra)
    applied = apply(form, pkg)
    texts = [m for messages in applied.errors.values() for m in messages]
    assert any(message in text for text in texts), applied.errors
    assert pkg.sections_of("config")[0].get("VERBOSE") == "1"


def test_web_forms_errors_land_at_their_fields() -> None:
    pkg = parse(f"config access 'home'\n\toption KEY 'plainpass'\n\toption KEY_BASE64 '{KEY}'\n"
                "\toption OPEN_PORTS 'tcp/x'\n\toption ENCRYPTION_MODE 'rot13'\n"
                "config access\n\toption SOURCE 'ANY'\n\toption HMAC_KEY 'plainpass'\n"
                "config config\n\toption VERBOSE 'loud'\n"
                "config config\n\toption MAX_SPA_PACKET_AGE '0'\n")
    form = form_from_package(pkg)
    applied = apply(form, pkg)
    at_fields, others = place_errors(pkg, form, applied, validate_package(pkg))
    assert set(at_fields) == {"access-0-SOURCE", "access-0-key", "access-0-OPEN_PORTS",
                              "access-0-extra-1-value", "access-1-key", "config-extra-0-value"}
    assert at_fields["access-0-key"] == [("KEY and KEY_BASE64 are both set; keep one "
                                         "encryption key")]
    assert at_fields["access-1-key"][0].startswith("KEY_BASE64 is missing")
    # The second config section has no fields on the page: its error goes on top.
    assert others == ["@config[1].MAX_SPA_PACKET_AGE: '0' is not a whole number in 1..100000"]


def test_web_forms_stanza_origins_must_be_in_order() -> None:
    pkg = parse("config access\n\toption SOURCE 'A'\nconfig access\n\toption SOURCE 'B'\n")
    with pytest.raises(FormError):
        form_from_post({"access_count": ["2"], "access.0.origin": ["1"],
                        "access.1.origin": ["0"]}, pkg)
    with pytest.raises(FormError):
        form_from_post({"access_count": ["2"], "access.0.origin": [""],
                        "access.1.origin": ["1"]}, pkg)
    with pytest.raises(FormConflict):
        form_from_post({"access_count": ["1"], "access.0.origin": ["2"]}, pkg)
    form = form_from_post({"access_count": ["2"], "access.0.origin": ["1"],
                           "access.1.origin": ["new"], "access.1.SOURCE": ["C"]}, pkg)
    apply(form, pkg)
    assert [s.get("SOURCE") for s in pkg.sections_of("access")] == ["B", "C"]


def test_web_forms_a_post_without_stanza_fields_keeps_the_stanzas() -> None:
    pkg = parse(ODD)
    form = form_from_post({"uci_enabled": ["1"]}, pkg)
    assert len(form.stanzas) == 1 and form.stanzas[0].origin == 0
    zero = form_from_post({"access_count": ["0"]}, pkg)
    apply(zero, pkg)
    assert pkg.sections_of("access") == []
