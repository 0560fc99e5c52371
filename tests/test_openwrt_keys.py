# First-install keys (openwrt/keys.py): placeholders replaced by real keys,
# real keys never touched, a second run (or a sysupgrade) changes nothing.

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from fwknopd_uci.openwrt.keys import init_keys, init_keys_file, init_section_keys
from fwknopd_uci.openwrt.qr import qr_text
from fwknopd_uci.openwrt.uci import UciSection, load, parse
from fwknopd_uci.openwrt.validate import validate_package

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHIPPED = SHARED / "vectors" / "uci-configs" / "net_fwknop_files_fwknopd"
KEY = "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc="
HMAC = ("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1"
        "lqQXuQ==")


def fixed_keys(key_len: int, hmac_len: int) -> tuple[str, str]:
    return (base64.b64encode(b"k" * key_len).decode(), base64.b64encode(b"h" * hmac_len).decode())


def section(**options: str) -> UciSection:
    return UciSection("access", None, dict(options))


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    if not SHIPPED.is_file():
        pytest.skip(f"shipped default config not found at {SHIPPED}")
    target = tmp_path / "fwknopd"
    shutil.copyfile(SHIPPED, target)
    return target


def test_keys_shipped_default_gets_real_keys(shipped: Path) -> None:
    before = shipped.read_text()
    assert init_keys_file(shipped) == ["@access[0]"]
    access = load(shipped).sections_of("access")[0]
    assert "KEY" not in access.options and "HMAC_KEY" not in access.options
    key, hmac_key = access.get("KEY_BASE64"), access.get("HMAC_KEY_BASE64")
    assert key is not None and hmac_key is not None
    assert (len(base64.b64decode(key)), len(base64.b64decode(hmac_key))) == (32, 64)
    assert (len(key), len(hmac_key)) == (44, 88)
    assert validate_package(load(shipped)) == []
    # Everything else of the file (comments, the config section) is kept.
    after = shipped.read_text()
    for line in before.splitlines():
        if "__CHANGEME__" not in line:
            assert line in after.splitlines()


def test_keys_second_run_is_byte_identical(shipped: Path) -> None:
    init_keys_file(shipped)
    first = shipped.read_bytes()
    assert init_keys_file(shipped) == []
    assert shipped.read_bytes() == first


def test_keys_random_and_different_per_section() -> None:
    pkg = parse("config access\n\toption SOURCE 'ANY'\nconfig access\n\toption SOURCE 'ANY'\n")
    init_keys(pkg)
    values = [s.get(name) for s in pkg.sections_of("access")
              for name in ("KEY_BASE64", "HMAC_KEY_BASE64")]
    assert len(set(values)) == 4 and None not in values


def test_keys_real_keys_are_never_touched() -> None:
    real = section(SOURCE="ANY", KEY_BASE64=KEY, HMAC_KEY_BASE64=HMAC)
    plain = section(SOURCE="ANY", KEY="my passphrase", HMAC_KEY="my hmac passphrase")
    for sec in (real, plain):
        before = dict(sec.options)
        assert not init_section_keys(sec, fixed_keys)
        assert sec.options == before


@pytest.mark.parametrize("placeholder", ["__CHANGEME__", "__changeme__", "CHANGEME", "ChangeMe"])
def test_keys_every_placeholder_spelling(placeholder: str) -> None:
    sec = section(SOURCE="ANY", KEY=placeholder, HMAC_KEY=placeholder)
    assert init_section_keys(sec, fixed_keys)
    assert list(sec.options) == ["SOURCE", "KEY_BASE64", "HMAC_KEY_BASE64"]
    assert sec.options["KEY_BASE64"] == fixed_keys(32, 64)[0]
    assert sec.options["HMAC_KEY_BASE64"] == fixed_keys(32, 64)[1]


def test_keys_only_the_placeholder_half_is_generated() -> None:
    sec = section(SOURCE="ANY", KEY_BASE64=KEY, HMAC_KEY="__CHANGEME__")
    assert init_section_keys(sec, fixed_keys)
    assert sec.options == {"SOURCE": "ANY", "KEY_BASE64": KEY,
                           "HMAC_KEY_BASE64": fixed_keys(32, 64)[1]}
    sec = section(SOURCE="ANY", KEY="CHANGEME", HMAC_KEY_BASE64=HMAC)
    assert init_section_keys(sec, fixed_keys)
    assert sec.options == {"SOURCE": "ANY", "HMAC_KEY_BASE64": HMAC,
                           "KEY_BASE64": fixed_keys(32, 64)[0]}


def test_keys_stale_placeholder_next_to_real_key_is_removed() -> None:
    """The 2015 LuCI defaults added KEY_BASE64 but left KEY 'CHANGEME'."""
    sec = section(SOURCE="ANY", KEY="CHANGEME", KEY_BASE64=KEY, HMAC_KEY_BASE64=HMAC)
    assert init_section_keys(sec, fixed_keys)
    assert sec.options == {"SOURCE": "ANY", "KEY_BASE64": KEY, "HMAC_KEY_BASE64": HMAC}


def test_keys_no_hmac_added_to_a_working_stanza_without_hmac() -> None:
    """A real key and no HMAC option at all is a working HMAC-less stanza:
    adding an HMAC key would lock its clients out."""
    sec = section(SOURCE="ANY", KEY_BASE64=KEY)
    assert not init_section_keys(sec, fixed_keys)
    assert sec.options == {"SOURCE": "ANY", "KEY_BASE64": KEY}


def test_keys_section_with_no_keys_gets_both() -> None:
    sec = section(SOURCE="ANY", OPEN_PORTS="tcp/22")
    assert init_section_keys(sec, fixed_keys)
    assert list(sec.options) == ["SOURCE", "OPEN_PORTS", "KEY_BASE64", "HMAC_KEY_BASE64"]


def test_keys_legacy_mode_gets_no_hmac_and_a_16_byte_key() -> None:
    sec = section(SOURCE="ANY", ENCRYPTION_MODE="legacy", KEY="__CHANGEME__")
    assert init_section_keys(sec, fixed_keys)
    assert sec.options == {"SOURCE": "ANY", "ENCRYPTION_MODE": "legacy",
                           "KEY_BASE64": fixed_keys(16, 64)[0]}


def test_keys_only_access_sections(tmp_path: Path) -> None:
    path = tmp_path / "fwknopd"
    path.write_text("config config\n\toption KEY 'CHANGEME'\n")
    before = path.read_bytes()
    assert init_keys_file(path) == []
    assert path.read_bytes() == before


def test_keys_missing_file_is_nothing_to_do(tmp_path: Path) -> None:
    assert init_keys_file(tmp_path / "absent") == []
    assert not (tmp_path / "absent").exists()


def test_keys_then_qr_text(shipped: Path) -> None:
    init_keys_file(shipped)
    access = load(shipped).sections_of("access")[0]
    assert qr_text(access) == (f"KEY_BASE64:{access.get('KEY_BASE64')} "
                               f"HMAC_KEY_BASE64:{access.get('HMAC_KEY_BASE64')}")
