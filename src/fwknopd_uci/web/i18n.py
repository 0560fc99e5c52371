# Translation hooks for every string the settings page shows.
#
# Strategy: each user-visible string goes through _() (or ngettext()) where it
# is written, in Python and in the templates, so a catalogue can be plugged in
# later without touching the call sites (luci-app-ttyd marks its strings the
# same way). For now both are the identity: English only.

from __future__ import annotations

__all__ = ["_", "ngettext"]


def _(message: str) -> str:
    """Translate ``message`` (gettext-style; the identity for now)."""
    return message


def ngettext(singular: str, plural: str, count: int) -> str:
    """Pick and translate the singular or plural form for ``count``."""
    return singular if count == 1 else plural
