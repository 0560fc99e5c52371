# The one fatal error of the configuration layer, and how its texts are shown.
#
# Purpose: fwknopd refuses to start on a broken fwknopd.conf or access.conf
# (spa-protocol.md 7.1, 8.1). Every such refusal here is a ConfigError that
# names the file, the line and the variable, so an operator can go straight
# to the mistake. Non-fatal findings are plain strings (warnings) returned
# next to the parsed values; the daemon decides how to log them.
#
# Strategy: the message parts are kept as attributes for callers and tests;
# str() renders "<file>:<line>: <VARIABLE>: <what is wrong>", leaving out a
# part that is unknown (a missing file has no line).
#
# Invariants: every text that came from a config file passes through shown()
# before it is put into a message, so a message is always printable,
# encodable as UTF-8 and a single line (no log injection through CR/LF or
# terminal escapes, no UnicodeEncodeError in a syslog handler).

from __future__ import annotations

__all__ = ["ConfigError", "shown"]


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


class ConfigError(Exception):
    """A fatal problem in fwknopd.conf, access.conf or an included file.

    Attributes:
        path: the file the problem is in (``"<command line>"`` for options).
        line: 1-based line number, or None when the problem is not on a line
            (a missing file, a stanza-level check with no better line).
        variable: the configuration variable concerned, or None.
        message: what is wrong, in words.
    """

    path: str
    line: int | None
    variable: str | None
    message: str

    def __init__(self, path: str, line: int | None, variable: str | None,
                 message: str) -> None:
        self.path = shown(path)
        self.line = line
        self.variable = None if variable is None else shown(variable)
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        if self.variable is None:
            return f"{where}: {self.message}"
        return f"{where}: {self.variable}: {self.message}"

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, int | None, str | None, str]]:
        # Keep the exception picklable (multiprocessing, pytest-xdist) although
        # __init__ takes four arguments instead of Exception's *args.
        return (type(self), (self.path, self.line, self.variable, self.message))
