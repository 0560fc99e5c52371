# First-install keys: give every access section real keys in place of the
# shipped placeholders, without ever touching a real key.
#
# Purpose: a fresh install has `KEY '__CHANGEME__'` and `HMAC_KEY
# '__CHANGEME__'` (older installs `CHANGEME`), which fwknopd refuses (or,
# for `CHANGEME`, takes as a literal key). The uci-defaults script runs
# `fwknopd-uci keys-init` on install and again at the first boot after
# every sysupgrade (openwrt.md 2.4, 5), so this must be idempotent.
#
# Rules, per access section and per pair (KEY/KEY_BASE64, then
# HMAC_KEY/HMAC_KEY_BASE64):
# * a value is real when it is set, non-empty and not a placeholder; a real
#   value is never changed;
# * placeholder or empty options of the pair are removed;
# * a pair left without a real value gets KEY_BASE64 (32 random bytes) or
#   HMAC_KEY_BASE64 (64 random bytes), from server/keygen.py;
# * exception: a section that already had a real encryption key and has no
#   HMAC option at all is a working stanza without HMAC; adding an HMAC key
#   would lock its clients out, so it is left alone (likewise HMAC is never
#   added to ENCRYPTION_MODE legacy, which cannot carry one).
#
# Invariants: the file is saved (atomically, by uci.save) only when a section
# changed, so a second run leaves it byte-identical; keys are never printed.

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from ..server.keygen import generate_keys
from .uci import UciPackage, UciSection, load, save
from .validate import is_placeholder, section_ref

__all__ = ["ENCRYPTION_PAIR", "HMAC_KEY_BYTES", "HMAC_PAIR", "KEY_BYTES", "has_real_key",
           "init_keys", "init_keys_file", "init_section_keys"]

KEY_BYTES: Final = 32
HMAC_KEY_BYTES: Final = 64
_LEGACY_KEY_BYTES: Final = 16  # legacy mode uses at most 16 bytes of the key
#: (generated option, other option) of each key pair.
ENCRYPTION_PAIR: Final = ("KEY_BASE64", "KEY")
HMAC_PAIR: Final = ("HMAC_KEY_BASE64", "HMAC_KEY")

#: A source of (KEY_BASE64, HMAC_KEY_BASE64) values for given byte lengths.
KeySource = Callable[[int, int], tuple[str, str]]


def _default_keys(key_len: int, hmac_len: int) -> tuple[str, str]:
    return generate_keys(key_len, hmac_len)


def _is_real(value: str | list[str] | None) -> bool:
    if value is None:
        return False
    if isinstance(value, list):
        return bool(value)  # not a shape we write; someone meant it, leave it
    return bool(value.strip()) and not is_placeholder(value)


def has_real_key(section: UciSection, pair: tuple[str, str]) -> bool:
    """True if one option of ``pair`` holds a real (non-placeholder) key."""
    return any(_is_real(section.options.get(name)) for name in pair)


def init_section_keys(section: UciSection, keys: KeySource = _default_keys) -> bool:
    """Apply the rules above to one access section; True if it changed."""
    mode = section.options.get("ENCRYPTION_MODE")
    legacy = isinstance(mode, str) and mode.strip().lower() == "legacy"
    had_key = has_real_key(section, ENCRYPTION_PAIR)
    hmac_absent = all(name not in section.options for name in HMAC_PAIR)
    wanted: list[tuple[str, str]] = []
    if not had_key:
        wanted.append(ENCRYPTION_PAIR)
    if not has_real_key(section, HMAC_PAIR) and not legacy \
            and not (had_key and hmac_absent):
        wanted.append(HMAC_PAIR)
    changed = False
    for pair in (ENCRYPTION_PAIR, HMAC_PAIR):
        for name in pair:
            value = section.options.get(name)
            if value is not None and not _is_real(value):
                section.delete(name)
                changed = True
    if wanted:
        key, hmac_key = keys(_LEGACY_KEY_BYTES if legacy else KEY_BYTES, HMAC_KEY_BYTES)
        for pair in wanted:
            section.set(pair[0], key if pair is ENCRYPTION_PAIR else hmac_key)
        changed = True
    return changed


def init_keys(pkg: UciPackage, keys: KeySource = _default_keys) -> list[str]:
    """Run init_section_keys on every access section; return the refs changed."""
    changed: list[str] = []
    for section in pkg.sections_of("access"):
        ref = section_ref(pkg, section)  # before any change: refs do not move
        if init_section_keys(section, keys):
            changed.append(ref)
    return changed


def init_keys_file(path: Path, keys: KeySource = _default_keys) -> list[str]:
    """init_keys on a UCI file, saved atomically only if something changed.

    A missing file is nothing to do. Returns the refs of the changed sections.

    Raises:
        UciError: the file does not parse.
        OSError: it cannot be read or written.
    """
    if not path.exists():
        return []
    pkg = load(path)
    changed = init_keys(pkg, keys)
    if changed:
        save(path, pkg)
    return changed
