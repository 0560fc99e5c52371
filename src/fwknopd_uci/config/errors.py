# The one fatal error of the configuration layer, and how its texts are shown.
#
# Purpose: fwknopd refuses to start on a broken fwknopd.conf or access.conf
# (spa-protocol.md 7.1, 8.1). Every such refusal here is a ConfigError that
# names the file, the line and the variable, so an operator can go straight
# to the mistake. Non-fatal findings are plain strings (warnings) returned
# next to the parsed values; the daemon decides how to log them. A
# ConfigError also carries the warnings collected before it, which often
# explain it (a dropped stanza, an ignored misspelt variable).
#
# Strategy: the message parts are kept as attributes for callers and tests;
# str() renders "<file>:<line>: <VARIABLE>: <what is wrong>", leaving out a
# part that is unknown (a missing file has no line).
#
# Invariants: every text that came from a config file passes through shown()
# before it is put into a message, so a message is always printable,
# encodable as UTF-8 and a single line (no log injection through CR/LF or
# terminal escapes, no UnicodeEncodeError in a syslog handler).
#
# Secrets: messages reach stderr, syslog and the "Reload failed" line, and a
# key written oddly (`KEY_BASE64=...`, a key alone on a line) is exactly what
# a broken line holds. So a message never contains text from a line unless
# that text is known not to be secret: a first word only when it looks like
# a variable name (name_shown), a path only when it names an existing file
# (path_shown), a value only after it has parsed as something harmless (a
# number, an address list). Everything else is described, not quoted.

from __future__ import annotations

import os
import re
from typing import Final

__all__ = ["DIRECTIVES", "MAX_WARNINGS", "ConfigError", "add_warning", "is_secret_name",
           "name_shown", "path_shown", "shown"]

#: The access.conf directives: known words, so always safe to echo.
DIRECTIVES: Final = frozenset({"%include", "%include_folder", "%include_keys"})
# Every fwknop variable looks like this; a first word that does not is more
# likely a value (a key on a line of its own) than a misspelt name.
_NAME: Final = re.compile(r"[A-Z][A-Z0-9_]{0,47}")
# A bound on the warnings of one parse: a 1 MiB file of bad lines would
# otherwise give half a million of them, each logged at start-up.
MAX_WARNINGS: Final = 100
_SUPPRESSED: Final = f"[*] More than {MAX_WARNINGS} warnings; the rest are not shown"


def shown(text: str) -> str:
    """Return ``text`` made safe for a one-line log message.

    Undecodable bytes (kept as surrogates by the readers) and non-printable
    characters become ``\\xNN`` / ``\\uNNNN`` escapes; printable text,
    including non-ASCII letters, is left alone.
    """
    if text.isprintable():
        return text
    out: list[str] = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            # A byte that was not valid UTF-8 (surrogateescape): show the byte.
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char.isprintable():
            out.append(char)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def name_shown(word: str) -> bool:
    """True if ``word``, the first word of a config line, may be echoed.

    That is when it looks like a variable name (``[A-Z][A-Z0-9_]{0,47}``
    once trailing ``:`` are removed) or is a directive. Anything else (a
    key alone on a line, ``KEY_BASE64=<key>``) is never put into a message.
    """
    bare = word.rstrip(":")
    return bare in DIRECTIVES or _NAME.fullmatch(bare) is not None


def is_secret_name(name: str) -> bool:
    """True for KEY, KEY_BASE64, HMAC_KEY, *_PW and any name holding KEY or PW."""
    return "KEY" in name or "PW" in name


def path_shown(path: str) -> str:
    """``'path'`` for a message if it names an existing file, else a description.

    A path that exists is a real file name, not a key pasted after
    ``%include``; a missing one is not echoed (the message gives its line).
    """
    try:
        exists = os.path.lexists(path)
    except (ValueError, OSError):  # NUL or unencodable text: not a file
        exists = False
    return f"'{shown(path)}'" if exists else "(the path on that line; not shown)"


def add_warning(warnings: list[str], text: str) -> None:
    """Append ``text`` unless MAX_WARNINGS are there (then one note, once)."""
    if len(warnings) < MAX_WARNINGS:
        warnings.append(text)
    elif len(warnings) == MAX_WARNINGS:
        warnings.append(_SUPPRESSED)


class ConfigError(Exception):
    """A fatal problem in fwknopd.conf, access.conf or an included file.

    Attributes:
        path: the file the problem is in (``"<command line>"`` for options).
        line: 1-based line number, or None when the problem is not on a line
            (a missing file, a stanza-level check with no better line).
        variable: the configuration variable concerned, or None. A text that
            does not look like a variable name is dropped (None): it may be
            a key that was written where a name belongs.
        message: what is wrong, in words.
        warnings: the warnings collected before the error, oldest first
            (parse_server_conf and parse_access_conf fill this in), so the
            daemon can log them before the fatal line.
    """

    path: str
    line: int | None
    variable: str | None
    message: str
    warnings: tuple[str, ...]

    def __init__(self, path: str, line: int | None, variable: str | None,
                 message: str, *, warnings: tuple[str, ...] = ()) -> None:
        self.path = shown(path)
        self.line = line
        self.variable = variable if variable is not None and name_shown(variable) else None
        self.message = message
        self.warnings = tuple(warnings)
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        if self.variable is None:
            return f"{where}: {self.message}"
        return f"{where}: {self.variable}: {self.message}"

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, int | None, str | None, str],
                                  dict[str, tuple[str, ...]]]:
        # Keep the exception picklable (multiprocessing, pytest-xdist) although
        # __init__ takes four arguments instead of Exception's *args; the
        # warnings travel as state (BaseException.__setstate__ sets them).
        return (type(self), (self.path, self.line, self.variable, self.message),
                {"warnings": self.warnings})
