# The text of the QR code that the Android client Fwknop2 imports.
#
# Purpose: the same text LuCI puts into its QR codes (openwrt.md 2.3), in the
# grammar Fwknop2 parses (3.1): `NAME:value` tokens joined by one space, names
# KEY_BASE64, KEY, HMAC_KEY_BASE64, HMAC_KEY in that order, no prefix, no
# suffix, no newline. The settings page reuses qr_text / qr_warnings.
#
# Differences from LuCI, each a fix: a value that is empty, a placeholder
# (`__CHANGEME__`, `CHANGEME`) or not one line is left out (Fwknop2 crashes on
# an empty value, a placeholder is no key, and a line break would split the
# text), and qr_warnings says what Fwknop2 would get wrong: it splits on every
# space and ':', so a plain key holding one is imported truncated.
#
# Invariants: qr_text never returns a token with an empty value, anything but
# base64 characters inside a base64 value, a line break, or leading/trailing
# white space.

from __future__ import annotations

from typing import Final

from .uci import UciSection
from .validate import is_placeholder

__all__ = ["QR_OPTIONS", "qr_text", "qr_tokens", "qr_warnings"]

#: The key options in the order LuCI emits them.
QR_OPTIONS: Final = ("KEY_BASE64", "KEY", "HMAC_KEY_BASE64", "HMAC_KEY")
_BREAKS: Final = frozenset("\r\n\x00")
# A *_BASE64 value goes into the text only when it is plain base64: anything
# else (a space, a tab, a ':' ...) could smuggle another NAME:value token
# into what the phone imports.
_BASE64_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _usable(value: object) -> str | None:
    if not isinstance(value, str) or not value or is_placeholder(value):
        return None
    if _BREAKS & set(value):
        return None
    return value


def _usable_for(name: str, value: object) -> str | None:
    usable = _usable(value)
    if usable is not None and name.endswith("_BASE64") and not set(usable) <= _BASE64_CHARS:
        return None
    return usable


def qr_tokens(section: UciSection) -> list[tuple[str, str]]:
    """(name, value) of the key options that go into the QR text, in order."""
    tokens: list[tuple[str, str]] = []
    for name in QR_OPTIONS:
        value = _usable_for(name, section.options.get(name))
        if value is not None:
            tokens.append((name, value))
    return tokens


def qr_text(section: UciSection) -> str:
    """The Fwknop2 QR text of an access section, ``""`` when it has no key.

    Example: ``KEY_BASE64:<44 chars> HMAC_KEY_BASE64:<88 chars>``.
    """
    return " ".join(f"{name}:{value}" for name, value in qr_tokens(section))


def qr_warnings(section: UciSection) -> list[str]:
    """What Fwknop2 would import wrongly from this section's QR text.

    Each message starts with the option name, e.g. ``KEY contains ...``, so a
    caller can prefix the section reference.
    """
    warnings: list[str] = []
    for name in QR_OPTIONS:
        value = section.options.get(name)
        if isinstance(value, list):
            warnings.append(f"{name} is a UCI list, not a key; it is left out of the QR text")
        elif isinstance(value, str) and value and _usable(value) is None \
                and not is_placeholder(value):
            warnings.append(f"{name} is not one line; it is left out of the QR text")
        elif isinstance(value, str) and value and _usable_for(name, value) is None \
                and not is_placeholder(value):
            warnings.append(f"{name} is not valid base64; it is left out of the QR text")
        elif isinstance(value, str) and not name.endswith("_BASE64") \
                and (" " in value or ":" in value):
            warnings.append(f"{name} contains a space or ':'; Fwknop2 splits the QR text "
                            "there and cannot import this key (use a base64 key instead)")
    names = [name for name, _ in qr_tokens(section)]
    for base64_name, plain in (("KEY_BASE64", "KEY"), ("HMAC_KEY_BASE64", "HMAC_KEY")):
        if base64_name in names and plain in names:
            warnings.append(f"{plain} and {base64_name} are both set; Fwknop2 keeps only "
                            f"{plain}, the later one")
    return warnings
