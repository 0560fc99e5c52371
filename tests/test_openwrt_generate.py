# /etc/config/fwknopd -> fwknopd.conf + access.conf (openwrt/generate.py): the
# pass-through rules, the fixes over the shipped script, the refusals and the
# atomic, both-or-neither replacement of the generated pair.

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fwknopd_uci.config import parse_access_conf, parse_server_conf
from fwknopd_uci.openwrt import generate as generate_module
from fwknopd_uci.openwrt.generate import GenerateError, generate, read_settings, render
from fwknopd_uci.openwrt.uci import load, parse

DATA = Path(__file__).resolve().parent / "data" / "openwrt"
KEY = "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc="
HMAC = ("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1"
        "lqQXuQ==")
KEY2 = "c2Vjb25kIGtleSBvZiB0aGlydHktdHdvIGJ5dGVzIQ=="
HMAC2 = "aG1hYyBrZXkgbnVtYmVyIHR3bywgYSBiaXQgbG9uZ2VyIHRoYW4gdGhlIGZpcnN0IG9uZQ=="


def body(text: str) -> list[str]:
    """The lines of a generated file without comments and blank lines."""
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_render_two_access_sections_each_in_its_own_stanza() -> None:
    """Each OPEN_PORTS goes into its own stanza, after that stanza's SOURCE."""
    rendered = render(load(DATA / "two-access.uci"))
    assert body(rendered.access_text) == [
        "SOURCE 198.51.100.0/24", f"KEY_BASE64 {KEY}", f"HMAC_KEY_BASE64 {HMAC}",
        "OPEN_PORTS tcp/22",
        "SOURCE ANY", f"KEY_BASE64 {KEY2}", f"HMAC_KEY_BASE64 {HMAC2}", "OPEN_PORTS udp/1194",
    ]


def test_render_source_first_then_uci_order() -> None:
    pkg = parse(f"""
config access
	option OPEN_PORTS 'tcp/22'
	option KEY_BASE64 '{KEY}'
	option SOURCE '192.0.2.0/24'
	option FW_ACCESS_TIMEOUT '60'
""")
    assert body(render(pkg).access_text) == [
        "SOURCE 192.0.2.0/24", "OPEN_PORTS tcp/22", f"KEY_BASE64 {KEY}", "FW_ACCESS_TIMEOUT 60"]


def test_render_lists_joined_and_lower_case_helpers_dropped() -> None:
    pkg = parse(f"""
config access
	list SOURCE '198.51.100.0/24'
	list SOURCE '203.0.113.9'
	option keytype 'Base 64 key'
	option hkeytype 'Base 64 key'
	option KEY_BASE64 '{KEY}'
	list OPEN_PORTS 'tcp/22'
	list OPEN_PORTS 'udp/1194'
	option CMD_CYCLE_TIMER '30'
""")
    assert body(render(pkg).access_text) == [
        "SOURCE 198.51.100.0/24, 203.0.113.9", f"KEY_BASE64 {KEY}",
        "OPEN_PORTS tcp/22, udp/1194", "CMD_CYCLE_TIMER 30"]


def test_render_config_sections_and_booleans() -> None:
    pkg = parse("""
config config
	option PCAP_INTF 'eth1'
	option ENABLE_IPT_FORWARDING 'y'
	option ENABLE_NAT_DNS '1'
	option ENABLE_SPA_PACKET_AGING 'no'
	option qr 'junk'
config config
	option VERBOSE '1'
""")
    assert body(render(pkg).server_text) == [
        "PCAP_INTF eth1", "ENABLE_IPT_FORWARDING Y", "ENABLE_NAT_DNS Y",
        "ENABLE_SPA_PACKET_AGING N", "VERBOSE 1"]


def test_render_records_where_each_line_came_from() -> None:
    rendered = render(load(DATA / "two-access.uci"))
    lines = rendered.access_text.splitlines()
    origins = {lines[number - 1].split()[0]: ref for number, ref in
               rendered.access_origin.items() if ref[0] == "@access[1]"}
    assert origins["OPEN_PORTS"] == ("@access[1]", "OPEN_PORTS")
    assert origins["SOURCE"] == ("@access[1]", "SOURCE")


def test_read_settings_sections_before_global_count() -> None:
    """The shipped script drops sections placed before `global`; the whole
    file is read first here, then interpreted."""
    pkg = parse("""
config network
	option network 'wan6'
config config
	option PCAP_INTF 'eth1'
config global
	option uci_enabled '1'
""")
    settings = read_settings(pkg)
    assert settings.enabled and settings.network == "wan6" and settings.pcap_intf == "eth1"
    assert len(settings.warnings) == 1 and "takes precedence" in settings.warnings[0]
    assert "PCAP_INTF" in body(render(pkg).server_text)[0]


@pytest.mark.parametrize(("value", "enabled"), [
    ("1", True), ("on", True), ("true", True), ("yes", True), ("enabled", True),
    ("0", False), ("off", False), ("no", False), ("disabled", False), ("Y", False),
])
def test_read_settings_uci_enabled_get_bool(value: str, enabled: bool) -> None:
    settings = read_settings(parse(f"config global\n\toption uci_enabled '{value}'\n"))
    assert settings.enabled is enabled
    assert bool(settings.warnings) is (value == "Y")


def test_read_settings_default_off_and_last_network_wins() -> None:
    assert not read_settings(parse("config global\n")).enabled
    pkg = parse("config network\n\toption network 'wan'\n"
                "config network\n\toption network 'wwan'\n")
    assert read_settings(pkg).network == "wwan"


def test_generate_writes_private_files_that_parse(tmp_path: Path) -> None:
    target = tmp_path / "var" / "etc" / "fwknop"
    result = generate(load(DATA / "two-access.uci"), target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
    for name in ("fwknopd.conf", "access.conf"):
        assert stat.S_IMODE(os.stat(target / name).st_mode) == 0o600
    assert sorted(os.listdir(target)) == ["access.conf", "fwknopd.conf"]  # no temp files left
    server, _ = parse_server_conf(target / "fwknopd.conf")
    stanzas, _ = parse_access_conf(target / "access.conf", server_config=server)
    assert [s.open_ports for s in stanzas] == [(("tcp", 22),), (("udp", 1194),)]
    assert [s.source.text for s in stanzas] == ["198.51.100.0/24", "ANY"]
    # The result holds what the daemon's parsers read from the (temp) files.
    assert [s.open_ports for s in result.stanzas] == [s.open_ports for s in stanzas]
    assert server.pcap_intf == result.server.pcap_intf == "eth1"
    assert result.access_path == target / "access.conf"


def test_generate_keytype_leftover_not_written(tmp_path: Path) -> None:
    """LuCI's old `keytype` option made fwknopd log "Ignoring unknown access
    parameter"; it is not written, and the keys still are."""
    generate(load(DATA / "keytype.uci"), tmp_path)
    text = (tmp_path / "access.conf").read_text()
    assert "keytype" not in text and "Base 64" not in text
    assert f"KEY_BASE64 {KEY}" in text.splitlines()
    _, warnings = parse_access_conf(tmp_path / "access.conf")
    assert not any("unknown" in w for w in warnings)


def _old_files(directory: Path) -> dict[str, bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    old = {"fwknopd.conf": b"# old server file\n", "access.conf": b"# old access file\n"}
    for name, data in old.items():
        (directory / name).write_bytes(data)
    return old


def _unchanged(directory: Path, old: dict[str, bytes]) -> None:
    assert {name: (directory / name).read_bytes() for name in old} == old
    assert sorted(os.listdir(directory)) == sorted(old)


def test_generate_refuses_injected_line_and_writes_nothing(tmp_path: Path) -> None:
    """A real newline inside a UCI value would add `ENABLE_CMD_EXEC Y` to
    access.conf in the shipped script; here it is refused."""
    pkg = load(DATA / "injection.uci")
    assert pkg.sections_of("access")[0].options["OPEN_PORTS"] == "tcp/22\nENABLE_CMD_EXEC Y"
    old = _old_files(tmp_path)
    with pytest.raises(GenerateError) as caught:
        generate(pkg, tmp_path)
    assert [str(e) for e in caught.value.errors] == [
        ("@access[0].OPEN_PORTS: contains a line break; a value must be one line (it would add "
         "lines to the generated configuration)")]
    _unchanged(tmp_path, old)


def test_generate_refuses_access_without_source(tmp_path: Path) -> None:
    pkg = parse(f"""
config access
	option SOURCE 'ANY'
	option KEY_BASE64 '{KEY}'
config access
	option OPEN_PORTS 'tcp/22'
	option KEY_BASE64 '{KEY2}'
""")
    old = _old_files(tmp_path)
    with pytest.raises(GenerateError) as caught:
        generate(pkg, tmp_path)
    assert [str(e).split(":")[0] for e in caught.value.errors] == ["@access[1].SOURCE"]
    _unchanged(tmp_path, old)


@pytest.mark.parametrize(("extra", "where", "words"), [
    ("option FORCE_NAT '192.0.2.10 22'", "@access[0].FORCE_NAT", "ENABLE_IPT_FORWARDING"),
    ("option CMD_CYCLE_OPEN 'logger open'", "@access[0].CMD_CYCLE_OPEN", "CMD_CYCLE_CLOSE"),
    ("option CMD_EXEC_USER 'no_such_user_here'", "@access[0].CMD_EXEC_USER", "Not a user"),
])
def test_generate_daemon_parser_refusal_maps_to_uci_option(tmp_path: Path, extra: str,
                                                           where: str, words: str) -> None:
    """The generated pair must parse with the daemon's parsers; their error is
    reported against the UCI option that produced the line."""
    pkg = parse(f"config access\n\toption SOURCE 'ANY'\n\toption KEY_BASE64 '{KEY}'\n"
                f"\t{extra}\n")
    old = _old_files(tmp_path)
    with pytest.raises(GenerateError) as caught:
        generate(pkg, tmp_path)
    (error,) = caught.value.errors
    assert f"{error.section_ref}.{error.option}" == where and words in error.message
    _unchanged(tmp_path, old)


def test_generate_both_or_neither(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the second rename fails, the first file is put back."""
    old = _old_files(tmp_path)
    real_replace = os.replace
    calls: list[str] = []

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls.append(os.fspath(dst))
        if os.fspath(dst).endswith("fwknopd.conf"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(generate_module.os, "replace", failing_replace)
    with pytest.raises(OSError):
        generate(load(DATA / "two-access.uci"), tmp_path)
    _unchanged(tmp_path, old)
    assert any(c.endswith("access.conf") for c in calls)


def test_generate_replaces_previous_files(tmp_path: Path) -> None:
    _old_files(tmp_path)
    generate(load(DATA / "two-access.uci"), tmp_path)
    assert "SOURCE ANY" in (tmp_path / "access.conf").read_text()
    assert sorted(os.listdir(tmp_path)) == ["access.conf", "fwknopd.conf"]


def test_generate_output_is_deterministic(tmp_path: Path) -> None:
    generate(load(DATA / "two-access.uci"), tmp_path / "a")
    generate(load(DATA / "two-access.uci"), tmp_path / "b")
    for name in ("fwknopd.conf", "access.conf"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
