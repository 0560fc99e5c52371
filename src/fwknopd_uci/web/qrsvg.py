# The QR code of an access stanza as inline SVG.
#
# Purpose: Fwknop2 imports keys from a QR code of qr_text() (openwrt.md 2.3,
# 3.1). The page shows it inline, so the SVG is part of our HTML and must not
# carry anything but squares.
#
# Strategy: two renderers make the SVG: the `qrcode` library
# (qrcode.image.svg.SvgPathImage) where it is installed, else the `qrencode`
# command (OpenWrt has a package for it and none for the library; LuCI uses
# it too). Their SVG is never passed on. It is read as a whitelist: only
# <svg viewBox="0 0 N N">, <g> with an integer translate(), <rect> with
# integer geometry and <path> made of axis-aligned rectangles, filled black
# or white; any other element or any text content is refused, comments and
# declarations are dropped. What is read is the set of dark modules, and the
# SVG the page shows is written anew from that grid by this module, so every
# byte of it comes from integers and fixed strings.
#
# Both renderers use error correction level M, a 4-module quiet zone and
# 8-bit mode, so the same text gives the same symbol size. The text goes to
# qrencode on stdin, not in its argv, so keys never show up in the process
# list.
#
# Invariants: qr_svg raises only QrError; its result contains no part of the
# text it encodes, nor of the renderer's output.

from __future__ import annotations

import html
import importlib
import importlib.util
import re
import subprocess
from html.parser import HTMLParser
from typing import Final, Literal

__all__ = ["MAX_SIZE", "QrError", "Renderer", "grid_from_svg", "qr_svg", "svg_from_grid"]

Renderer = Literal["auto", "qrcode", "qrencode"]

#: Bounds on what a renderer may hand back: version 40 is 177 modules plus
#: the quiet zone; its SVG from qrencode is under 1.5 MB (one rect a module).
MAX_SIZE: Final = 200
MAX_SVG_BYTES: Final = 4 * 1024 * 1024
QRENCODE_TIMEOUT: Final = 10.0  # seconds; it takes milliseconds
_BORDER: Final = 4
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_PATH_TOKEN: Final = re.compile(r"[MmHhVvLlZz]|[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_PATH_DATA: Final = re.compile(r"(?:[MmHhVvLlZz]|[+-]?(?:\d+(?:\.\d*)?|\.\d+)|[\s,])*")
_TRANSLATE: Final = re.compile(r"\s*translate\(\s*([^,\s)]+)(?:[\s,]+([^,\s)]+))?\s*\)\s*")
_DARK: Final = frozenset({None, "#000", "#000000", "black"})
_LIGHT: Final = frozenset({"#fff", "#ffffff", "white", "none"})

Cell = tuple[int, int]


class QrError(Exception):
    """No QR code could be made (no renderer, text too long, odd SVG)."""


def _integer(text: str | None, what: str) -> int:
    if text is None or _NUMBER.fullmatch(text.strip()) is None:
        raise QrError(f"the SVG has a {what} that is not a plain number")
    value = float(text)
    if not value.is_integer() or abs(value) > MAX_SIZE:
        raise QrError(f"the SVG has a {what} off the module grid")
    return int(value)


def _fill_is_dark(fill: str | None) -> bool:
    value = None if fill is None else fill.strip().lower()
    if value in _DARK:
        return True
    if value in _LIGHT:
        return False
    raise QrError("the SVG uses a colour other than black and white")


class _Reader(HTMLParser):
    """The dark modules of a renderer's SVG (see the module comment)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.size: int | None = None
        self.dark: set[Cell] = set()
        # Per open element: its offset and inherited fill.
        self.stack: list[tuple[str, int, int, str | None]] = []
        self.finished = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, dict(attrs), empty=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, dict(attrs), empty=True)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            raise QrError("the SVG is not well nested")
        self.stack.pop()
        if not self.stack:
            self.finished = True

    def handle_data(self, data: str) -> None:
        if data.strip():
            raise QrError("the SVG has text content")

    def _element(self, tag: str, attrs: dict[str, str | None], *, empty: bool) -> None:
        if self.finished:
            raise QrError("the SVG has content after its root element")
        if tag == "svg":
            if self.stack:
                raise QrError("the SVG has a nested <svg>")
            self.size = self._viewbox(attrs.get("viewbox"))
            dx = dy = 0
            fill = attrs.get("fill")
        elif not self.stack:
            raise QrError(f"the SVG does not start with <svg> but <{tag}>")
        else:
            _, dx, dy, fill = self.stack[-1]
            fill = attrs.get("fill", fill)
            if tag == "g":
                dx, dy = self._translate(attrs.get("transform"), dx, dy)
            elif tag == "rect":
                self._rect(attrs, dx, dy, fill)
            elif tag == "path":
                self._path(attrs.get("d") or "", dx, dy, fill)
            else:
                raise QrError(f"the SVG has an element that is not allowed: <{tag[:20]}>")
        if not empty:
            self.stack.append((tag, dx, dy, fill))
        elif tag == "svg":
            self.finished = True

    @staticmethod
    def _viewbox(text: str | None) -> int:
        parts = (text or "").replace(",", " ").split()
        if len(parts) != 4:
            raise QrError("the SVG has no viewBox")
        x, y, width, height = (_integer(part, "viewBox") for part in parts)
        if x != 0 or y != 0 or width != height or not 21 <= width <= MAX_SIZE:
            raise QrError("the SVG's viewBox is not a square QR code")
        return width

    @staticmethod
    def _translate(text: str | None, dx: int, dy: int) -> tuple[int, int]:
        if text is None:
            return dx, dy
        match = _TRANSLATE.fullmatch(text)
        if match is None:
            raise QrError("the SVG has a transform other than translate()")
        x = _integer(match.group(1), "translation")
        y = _integer(match.group(2), "translation") if match.group(2) is not None else 0
        return dx + x, dy + y

    def _cover(self, left: int, top: int, right: int, bottom: int) -> None:
        size = self.size or 0
        if not (0 <= left < right <= size and 0 <= top < bottom <= size):
            raise QrError("the SVG draws outside its viewBox")
        self.dark.update((x, y) for y in range(top, bottom) for x in range(left, right))

    def _rect(self, attrs: dict[str, str | None], dx: int, dy: int, fill: str | None) -> None:
        x = _integer(attrs.get("x", "0"), "rect x") + dx
        y = _integer(attrs.get("y", "0"), "rect y") + dy
        width = _integer(attrs.get("width"), "rect width")
        height = _integer(attrs.get("height"), "rect height")
        if _fill_is_dark(fill):
            self._cover(x, y, x + width, y + height)

    def _path(self, data: str, dx: int, dy: int, fill: str | None) -> None:
        dark = _fill_is_dark(fill)
        for polygon in _subpaths(data):
            xs = sorted({x for x, _ in polygon})
            ys = sorted({y for _, y in polygon})
            corners = {(x, y) for x in (xs[0], xs[-1]) for y in (ys[0], ys[-1])}
            if len(xs) != 2 or len(ys) != 2 or set(polygon) != corners:
                raise QrError("the SVG has a path that is not a rectangle")
            if dark:
                self._cover(xs[0] + dx, ys[0] + dy, xs[1] + dx, ys[1] + dy)


def _subpaths(data: str) -> list[list[Cell]]:
    """The closed polygons of path data made of M, L, H, V and Z commands."""
    if _PATH_DATA.fullmatch(data) is None:
        raise QrError("the SVG has path data other than M, L, H, V and Z")
    tokens = _PATH_TOKEN.findall(data)
    polygons: list[list[Cell]] = []
    current: list[Cell] = []
    x = y = 0
    command = ""
    index = 0

    def number() -> int:
        nonlocal index
        if index >= len(tokens) or tokens[index].isalpha():
            raise QrError("the SVG has path data with a missing number")
        index += 1
        return _integer(tokens[index - 1], "path coordinate")

    while index < len(tokens):
        if tokens[index].isalpha():
            command = tokens[index]
            index += 1
        elif command in ("", "Z", "z"):
            raise QrError("the SVG has path data that does not start with M")
        relative = command.islower()
        kind = command.upper()
        if kind == "Z":
            if current:
                polygons.append(current)
            current = []
            continue
        if kind in ("M", "L"):
            nx, ny = number(), number()
            x, y = (x + nx, y + ny) if relative else (nx, ny)
            if kind == "M":
                if current:
                    polygons.append(current)
                current = []
                command = "l" if relative else "L"  # later pairs are line-tos
        elif kind == "H":
            value = number()
            x = x + value if relative else value
        elif kind == "V":
            value = number()
            y = y + value if relative else value
        else:
            raise QrError("the SVG has path data other than M, L, H, V and Z")
        if not current or current[-1] != (x, y):
            current.append((x, y))
    if current:
        polygons.append(current)
    return [p[:-1] if len(p) > 1 and p[0] == p[-1] else p for p in polygons]


def grid_from_svg(svg: str) -> tuple[int, frozenset[Cell]]:
    """The size and the dark modules of a renderer's QR SVG.

    Raises:
        QrError: the SVG holds anything but a square grid of black modules.
    """
    if len(svg) > MAX_SVG_BYTES:
        raise QrError("the SVG is too large")
    reader = _Reader()
    reader.feed(svg)
    reader.close()
    if reader.size is None or reader.stack or not reader.dark:
        raise QrError("the SVG has no QR code in it")
    return reader.size, frozenset(reader.dark)


def svg_from_grid(size: int, dark: frozenset[Cell] | set[Cell], label: str) -> str:
    """Our own SVG for a module grid: a white square and one black path,
    one rectangle per horizontal run of dark modules."""
    runs: list[str] = []
    for y in range(size):
        x = 0
        while x < size:
            if (x, y) not in dark:
                x += 1
                continue
            start = x
            while x < size and (x, y) in dark:
                x += 1
            runs.append(f"M{start} {y}h{x - start}v1h{start - x}z")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
            f'class="qr-code" role="img" aria-label="{html.escape(label)}" '
            f'shape-rendering="crispEdges"><rect width="{size}" height="{size}" fill="#fff"/>'
            f'<path fill="#000" d="{"".join(runs)}"/></svg>')


def _with_qrcode(text: str) -> str:
    qrcode = importlib.import_module("qrcode")
    svg = importlib.import_module("qrcode.image.svg")
    try:
        code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M,
                             border=_BORDER, image_factory=svg.SvgPathImage)
        code.add_data(text.encode("utf-8", "surrogateescape"), optimize=0)
        code.make(fit=True)
        out = code.make_image().to_string(encoding="unicode")
    except (ValueError, TypeError, IndexError) as exc:  # DataOverflowError is a ValueError
        raise QrError(f"the qrcode library could not encode it: {type(exc).__name__}") from None
    if not isinstance(out, str):
        raise QrError("the qrcode library returned no SVG text")
    return out


def _with_qrencode(text: str, command: str, timeout: float) -> str:
    argv = [command, "-t", "SVG", "-l", "M", "-m", str(_BORDER), "-8", "-o", "-"]
    try:
        done = subprocess.run(argv, input=text.encode("utf-8", "surrogateescape"),
                              capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise QrError(f"the '{command}' command is not installed") from None
    except subprocess.TimeoutExpired:
        raise QrError(f"qrencode did not finish in {timeout:g} s") from None
    except OSError as exc:
        raise QrError(f"cannot run qrencode: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise QrError(f"qrencode exited {done.returncode} (is the text too long?)")
    if len(done.stdout) > MAX_SVG_BYTES:
        raise QrError("qrencode returned too much")
    return done.stdout.decode("utf-8", "replace")


def qr_svg(text: str, renderer: Renderer = "auto", *, label: str = "QR code",
           qrencode: str = "qrencode", timeout: float = QRENCODE_TIMEOUT) -> str:
    """Inline SVG of a QR code holding exactly ``text``.

    Args:
        text: what the code encodes (UTF-8, byte mode).
        renderer: ``qrcode`` (the library), ``qrencode`` (the command) or
            ``auto``: the library when it is installed, else the command.
        label: the accessible name of the image (escaped).
        qrencode: the qrencode command.
        timeout: seconds to wait for qrencode.

    Raises:
        QrError: the text is empty or too long, or no renderer worked.
    """
    if not text:
        raise QrError("there is nothing to encode")
    fallback = renderer == "auto" and importlib.util.find_spec("qrcode") is None
    if renderer == "qrcode" or renderer == "auto" and not fallback:
        svg = _with_qrcode(text)
    elif renderer == "qrencode" or fallback:
        try:
            svg = _with_qrencode(text, qrencode, timeout)
        except QrError as exc:
            if fallback:
                raise QrError(f"{exc}, nor the qrcode library") from None
            raise
    else:
        raise QrError(f"unknown QR renderer {renderer!r}")
    size, dark = grid_from_svg(svg)
    return svg_from_grid(size, dark, label)

