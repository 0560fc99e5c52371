# The QR code SVG (web/qrsvg.py): both renderers encode exactly the text
# (decoded with zbar, a real QR reader), the renderer's SVG is read as a
# whitelist and never passed on, and qrencode gets the text on stdin.

from __future__ import annotations

import importlib.util
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fwknopd_uci.openwrt.qr import qr_text
from fwknopd_uci.openwrt.uci import UciSection
from fwknopd_uci.web import qrsvg
from fwknopd_uci.web.qrsvg import QrError, grid_from_svg, qr_svg, svg_from_grid

KEY = "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc="
HMAC = ("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1"
        "lqQXuQ==")
TEXT = qr_text(UciSection("access", None, {"KEY_BASE64": KEY, "HMAC_KEY_BASE64": HMAC}))
QRENCODE = shutil.which("qrencode")
ZBARIMG = shutil.which("zbarimg")
HAS_QRCODE = importlib.util.find_spec("qrcode") is not None

needs_qrencode = pytest.mark.skipif(QRENCODE is None, reason="qrencode is not installed")
needs_qrcode = pytest.mark.skipif(not HAS_QRCODE, reason="the qrcode library is not installed")
needs_zbar = pytest.mark.skipif(ZBARIMG is None, reason="zbarimg (zbar-tools) is not installed")


def decode(svg: str, tmp_path: Path) -> str:
    """Rasterise our SVG's module grid and read it with zbarimg."""
    size, dark = grid_from_svg(svg)
    scale = 4
    rows = [bytes(0 if (x // scale, y // scale) in dark else 255 for x in range(size * scale))
            for y in range(size * scale)]
    image = tmp_path / "qr.pgm"
    image.write_bytes(b"P5\n%d %d\n255\n" % (size * scale, size * scale) + b"".join(rows))
    assert ZBARIMG is not None
    done = subprocess.run([ZBARIMG, "-q", "--raw", str(image)], capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode("utf-8").removesuffix("\n")


@needs_zbar
@pytest.mark.parametrize("renderer", [
    pytest.param("qrcode", marks=needs_qrcode), pytest.param("qrencode", marks=needs_qrencode)])
@pytest.mark.parametrize("text", [TEXT, "KEY:pass word HMAC_KEY:h", "KEY:ünïcødé ✓", "x"])
def test_web_qrsvg_encodes_exactly_the_text(renderer: qrsvg.Renderer, text: str,
                                            tmp_path: Path) -> None:
    svg = qr_svg(text, renderer)
    assert decode(svg, tmp_path) == text


@pytest.mark.parametrize("renderer", [
    pytest.param("qrcode", marks=needs_qrcode), pytest.param("qrencode", marks=needs_qrencode)])
def test_web_qrsvg_output_is_our_own_markup(renderer: qrsvg.Renderer) -> None:
    svg = qr_svg(TEXT, renderer, label='Keys "<b>"')
    assert KEY not in svg and HMAC not in svg and "KEY" not in svg
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ')
    assert 'aria-label="Keys &quot;&lt;b&gt;&quot;"' in svg
    tags = {tag for tag in __import__("re").findall(r"<([a-z]+)", svg)}
    assert tags == {"svg", "rect", "path"}
    assert "id=" not in svg and "style" not in svg and "xlink" not in svg
    size, dark = grid_from_svg(svg)
    assert svg == svg_from_grid(size, dark, 'Keys "<b>"')


@needs_qrcode
@needs_qrencode
def test_web_qrsvg_both_renderers_make_the_same_size() -> None:
    sizes = {grid_from_svg(qr_svg(TEXT, r))[0] for r in ("qrcode", "qrencode")}
    assert len(sizes) == 1


def test_web_qrsvg_auto_falls_back_to_qrencode(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """Where the library is missing (OpenWrt), `auto` runs the command, with
    the text on stdin: never in argv, where the process list would show it."""
    log = tmp_path / "argv.json"
    real = QRENCODE or "qrencode"
    fake = tmp_path / "qrencode"
    fake.write_text(f"#!{sys.executable}\n"
                    "import json, subprocess, sys\n"
                    "data = sys.stdin.buffer.read()\n"
                    f"open({str(log)!r}, 'w').write(json.dumps([sys.argv[1:], "
                    "data.decode()]))\n"
                    "sys.stdout.buffer.write(subprocess.run("
                    f"[{real!r}] + sys.argv[1:], input=data, capture_output=True).stdout)\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(qrsvg.importlib.util, "find_spec",
                        lambda name, *a: None if name == "qrcode" else real_find_spec(name, *a))
    if QRENCODE is None:
        with pytest.raises(QrError):
            qr_svg(TEXT, "auto", qrencode=str(fake))
        return
    svg = qr_svg(TEXT, "auto", qrencode=str(fake))
    argv, stdin = json.loads(log.read_text())
    assert argv == ["-t", "SVG", "-l", "M", "-m", "4", "-8", "-o", "-"]
    assert stdin == TEXT
    assert grid_from_svg(svg)[0] >= 21


def test_web_qrsvg_errors() -> None:
    with pytest.raises(QrError, match="nothing to encode"):
        qr_svg("")
    with pytest.raises(QrError, match="not installed"):
        qr_svg(TEXT, "qrencode", qrencode="/nonexistent/qrencode")
    with pytest.raises(QrError):
        qr_svg(TEXT, "nonsense")  # type: ignore[arg-type]
    for renderer in ("qrcode", "qrencode"):
        if renderer == "qrcode" and not HAS_QRCODE or renderer == "qrencode" and not QRENCODE:
            continue
        with pytest.raises(QrError):
            qr_svg("x" * 5000, renderer)  # type: ignore[arg-type]


FINDER = "".join(f'<rect x="{x}" y="{y}" width="1" height="1"/>'
                 for x in range(7) for y in range(7))


def svg(body: str, size: int = 29, extra: str = "") -> str:
    return f'<svg viewBox="0 0 {size} {size}"{extra}>{body}</svg>'


def test_web_qrsvg_reads_rects_paths_and_translations() -> None:
    size, dark = grid_from_svg(svg('<g transform="translate(4,4)"><rect x="0" y="0" '
                                   'width="2" height="1" fill="#000000"/></g>'
                                   '<rect width="29" height="29" fill="#ffffff"/>'
                                   '<path d="M10,10H11V11H10zM12 12 h1 v2 h-1 Z"/>'))
    assert size == 29
    assert dark == {(4, 4), (5, 4), (10, 10), (12, 12), (12, 13)}


@pytest.mark.parametrize("bad", [
    svg(FINDER + "<script>alert(1)</script>"),
    svg(FINDER + '<foreignObject><p>x</p></foreignObject>'),
    svg(FINDER + "<a href='javascript:x'><rect width='1' height='1'/></a>"),
    svg(FINDER + "<text>hello</text>"),
    svg(FINDER + "hello"),
    svg(FINDER + '<image href="data:x"/>'),
    svg(FINDER + '<use href="#a"/>'),
    svg(FINDER + '<rect x="1" y="1" width="1" height="1" fill="red"/>'),
    svg(FINDER + '<rect x="1.5" y="1" width="1" height="1"/>'),
    svg(FINDER + '<rect x="28" y="1" width="2" height="1"/>'),
    svg(FINDER + '<rect x="1" y="1" width="1" height="1mm"/>'),
    svg(FINDER + '<path d="M1,1L3,3L1,3z"/>'),
    svg(FINDER + '<path d="M1,1C3,3 4,4 5,5z"/>'),
    svg(FINDER + '<g transform="rotate(45)"><rect width="1" height="1"/></g>'),
    svg(FINDER + "<svg viewBox='0 0 29 29'></svg>"),
    svg(FINDER, size=10), svg(FINDER, size=500),
    '<svg viewBox="0 0 29 30">' + FINDER + "</svg>",
    "<rect width='1' height='1'/>",
    svg(FINDER) + "<rect width='1' height='1'/>",
    svg(""), "", "<svg>",
])
def test_web_qrsvg_refuses_anything_but_modules(bad: str) -> None:
    with pytest.raises(QrError):
        grid_from_svg(bad)


def test_web_qrsvg_drops_comments_declarations_and_unknown_attributes() -> None:
    source = ('<?xml version="1.0"?><!DOCTYPE svg><!-- <script> -->'
              '<svg viewBox="0 0 29 29" onload="alert(1)" xmlns="http://www.w3.org/2000/svg">'
              '<rect x="1" y="1" width="1" height="1" onclick="x()" class="evil"/></svg>')
    size, dark = grid_from_svg(source)
    out = svg_from_grid(size, dark, "QR")
    assert "onload" not in out and "onclick" not in out and "evil" not in out
    assert "<!--" not in out and "<?xml" not in out
    assert 'd="M1 1h1v1h-1z"' in out
