# The settings page's QR codes (web/qrsvg.py) read back by a real decoder.
#
# For a few key sets, qr_svg() renders the Fwknop2 text (openwrt/qr.py
# qr_text) through both of its renderers, the qrcode library and the
# qrencode command. The SVG is turned into pixels two ways, by rsvg-convert
# and by Chromium (as the page shows it, at whole and fractional pixel
# sizes per module), and zbarimg must read back exactly the same bytes.

from __future__ import annotations

import base64
import importlib.util
import re
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from webdriver import browser, rasterise_svg, require_browser, zbar_decode

from fwknopd_uci.openwrt.qr import qr_text
from fwknopd_uci.openwrt.uci import UciSection
from fwknopd_uci.server.keygen import generate_keys
from fwknopd_uci.web.qrsvg import grid_from_svg, qr_svg

if TYPE_CHECKING:
    from selenium.webdriver import Chrome as WebDriver

KEY = "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc="
HMAC = ("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1"
        "lqQXuQ==")
_LONG_KEY, _LONG_HMAC = generate_keys(32, 128)

# name -> the access options whose QR text is encoded.
KEY_SETS: dict[str, dict[str, str]] = {
    "fixture": {"KEY_BASE64": KEY, "HMAC_KEY_BASE64": HMAC},
    "fresh": dict(zip(("KEY_BASE64", "HMAC_KEY_BASE64"), generate_keys(32, 64), strict=True)),
    "key-only": {"KEY_BASE64": KEY},
    "plain": {"KEY": "correct-horse", "HMAC_KEY": "battery+staple/hmac=="},
    "utf8-plain": {"KEY": "pässwörd-ключ", "HMAC_KEY": "秘密のHMAC鍵"},
    # The longest the page accepts: 32-byte key, 128-byte HMAC key, all four.
    "largest": {"KEY_BASE64": _LONG_KEY, "KEY": "k" * 32, "HMAC_KEY_BASE64": _LONG_HMAC,
                "HMAC_KEY": "h" * 128},
}
RENDERERS = ("qrcode", "qrencode")
ZOOMS = (2, 3, 4, 7)  # pixels per module for rsvg-convert
CSS_MODULE_PX = (4.0, 5.5, 6.25)  # pixels per module in the browser


def text_of(options: dict[str, str]) -> str:
    return qr_text(UciSection("access", None, dict(options)))


def require_renderer(renderer: str) -> None:
    if renderer == "qrcode" and importlib.util.find_spec("qrcode") is None:
        pytest.skip("the qrcode library is not installed")
    if renderer == "qrencode" and shutil.which("qrencode") is None:
        pytest.skip("the qrencode command is not installed")


def modules(svg: str) -> int:
    found = re.search(r'viewBox="0 0 ([0-9]+) \1"', svg)
    assert found, svg[:200]
    return int(found.group(1))


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("key_set", sorted(KEY_SETS))
def test_qr_svg_decodes_to_exact_text_rsvg(key_set: str, renderer: str) -> None:
    require_renderer(renderer)
    text = text_of(KEY_SETS[key_set])
    assert text
    svg = qr_svg(text, renderer)
    for zoom in ZOOMS:
        assert zbar_decode(rasterise_svg(svg.encode(), zoom=zoom)) == [text.encode()], zoom


@pytest.mark.parametrize("key_set", sorted(KEY_SETS))
def test_both_renderers_agree(key_set: str) -> None:
    """Same text, same symbol size (level M, 8-bit, 4-module border)."""
    for renderer in RENDERERS:
        require_renderer(renderer)
    text = text_of(KEY_SETS[key_set])
    library, command = (qr_svg(text, renderer) for renderer in RENDERERS)
    assert modules(library) == modules(command)
    assert grid_from_svg(library)[0] == modules(library)
    for svg in (library, command):
        # Nothing of the encoded text is in the markup (qrsvg's invariant).
        for value in KEY_SETS[key_set].values():
            assert value not in svg
            assert base64.b64encode(value.encode()).decode()[:12] not in svg


@pytest.fixture(scope="module")
def chromium() -> Iterator[WebDriver]:
    require_browser()
    with browser() as driver:
        driver.get("about:blank")
        yield driver


def browser_decode(driver: WebDriver, svg: str, module_px: float) -> list[bytes]:
    """Show the SVG alone on a white page at module_px per module, screenshot
    it with a white margin around, and decode the pixels."""
    size = modules(svg) * module_px
    driver.execute_script("""
        document.documentElement.style.background = '#fff';
        document.body.style.margin = '0';
        document.body.innerHTML = '';
        const box = document.createElement('div');
        box.id = 'box';
        box.style.cssText = 'display:inline-block;padding:16px;background:#fff';
        box.innerHTML = arguments[0];
        const svg = box.querySelector('svg');
        svg.style.width = arguments[1] + 'px';
        svg.style.height = arguments[1] + 'px';
        svg.style.display = 'block';
        document.body.appendChild(box);
    """, svg, size)
    from selenium.webdriver.common.by import By
    png: bytes = driver.find_element(By.ID, "box").screenshot_as_png
    return zbar_decode(png)


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("key_set", ["fixture", "plain", "utf8-plain", "largest"])
def test_qr_svg_decodes_to_exact_text_in_chromium(key_set: str, renderer: str,
                                                   chromium: WebDriver) -> None:
    require_renderer(renderer)
    text = text_of(KEY_SETS[key_set])
    svg = qr_svg(text, renderer)
    for module_px in CSS_MODULE_PX:
        assert browser_decode(chromium, svg, module_px) == [text.encode()], module_px
