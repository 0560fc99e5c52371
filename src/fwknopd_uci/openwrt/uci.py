# UCI files (/etc/config/*): a pure-Python reader and writer with libuci's syntax.
#
# Purpose: /etc/config/fwknopd is a UCI file, read by the init script through
# libuci and written by LuCI. Debian has no libuci and the router may lack
# the Python binding, so this module reads and writes the format itself:
# parse() and load() give a UciPackage of sections, dump() and save() write it
# back, keeping the file's comments and layout wherever nothing changed.
#
# Syntax, as libuci's file parser reads it:
# - statements `config <type> [<name>]`, `option <name> [<value>]`,
#   `list <name> [<value>]` and `package <name>`, one per line or separated
#   by `;`. The command word is bare and may be cut to its first letter
#   (`c`, `o`, `l`, `p`), as libuci allows.
# - an argument is bare text, 'single-quoted' (no escapes) or "double-quoted"
#   (a backslash takes the next character literally, so "\n" is "n"); pieces
#   that touch make one argument ('a'"b"c is abc, 'it'\''s' is it's). Outside
#   single quotes a backslash at the end of a line joins the next line. Quoted
#   text may span lines; the newlines are part of the value.
# - `#` outside quotes starts a comment up to the end of the line, also in
#   the middle of a bare word (`b#c` is `b`).
# - a section type is printable ASCII without spaces (libuci's type rule is
#   wider than its name rule); section and option names are [A-Za-z0-9_]+.
#
# Semantics that are libuci's, not a naive reading of the file:
# - `option x ''` and a bare `option x` are ignored: libuci does not store an
#   option with an empty value, and such a line does not clear an earlier x.
#   An empty list item (`list x ''`) is kept.
# - a later `option x` with a different value replaces x and moves it to the
#   end of the section (libuci frees and re-adds it); the same value leaves
#   it in place. `list x` after `option x` turns x into a list [old, new],
#   also moved to the end; `option x` after `list x` replaces the list.
# - a second `config <type> '<name>'` with a known name continues that
#   section; with another type it is an error (libuci's strict mode).
# - `package <name>` is checked and otherwise ignored, as libuci does when it
#   loads a single file; its line is kept in the text.
# Where libuci's own scanner misreads an odd line (a `;` right after an
# omitted section name, a backslash line join at the start of an argument)
# this reader takes the plain meaning instead of raising.
#
# Writer strategy: the parser keeps every statement's exact source text and
# the comment, blank and ignored lines before it. dump() of an unchanged
# package returns the text it was parsed from. Otherwise each section is
# rebuilt: unchanged headers, options and list items are copied from the
# source, changed ones are written canonically (a tab, `option name 'value'`,
# `'` written as '\''). New options go after the section's last statement
# and the comment lines right below it (the commented-out example of the
# shipped file); new sections are appended after one blank line. Comments
# and blank lines stay attached to what follows them. When an option or a
# section is deleted, the comment block right against it goes with it and
# blocks set apart by a blank line stay. Comments before the first section
# that end with a blank line belong to the file, not to the first section.
#
# Invariants: parse() raises only UciError; dump(parse(t)) == t for every t
# that parses; parse(dump(p)) has p's sections, options and list items in
# p's order for every package dump() accepts (an option whose value is the
# empty string is not written, as libuci cannot hold one). No message shows
# an option's value, and repr() hides the values of options named like keys.

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple, NoReturn

__all__ = [
    "MAX_FILE_BYTES",
    "UciError",
    "UciPackage",
    "UciSection",
    "dump",
    "export",
    "load",
    "parse",
    "save",
    "uci_bool",
]

# A bound on one config file; real /etc/config files are a few KiB.
MAX_FILE_BYTES: Final = 4 * 1024 * 1024

_NAME: Final = re.compile(r"[A-Za-z0-9_]+")
_PACKAGE_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
_TYPE: Final = re.compile(r"[!-~]+")  # libuci: any printable ASCII but space
_BARE_TYPE: Final = re.compile(r"[^'\"\\#;]+")  # a type that needs no quotes
_REF: Final = re.compile(r"@(.+)\[(-?[0-9]+)\]")
_WS: Final = " \t\r\v\f"  # C isspace() without the newline
_BARE_RUN: Final = re.compile(r"[^ \t\r\v\f\n'\"\\;#]+")
_DQ_RUN: Final = re.compile(r'[^"\\]+')
_COMMANDS: Final = {"config": "config", "c": "config", "option": "option", "o": "option",
                    "list": "list", "l": "list", "package": "package", "p": "package"}
# OpenWrt's get_bool (/lib/functions.sh): exact, case-sensitive words.
_TRUE: Final = frozenset({"1", "on", "true", "yes", "enabled"})
_FALSE: Final = frozenset({"0", "off", "false", "no", "disabled"})
_SHOWN_MAX: Final = 40  # characters of a bad word quoted in a message


class UciError(Exception):
    """A UCI file that cannot be read, or a package that cannot be written.

    Attributes:
        path: the file concerned, or None (text given to parse() without a
            path, or a package being dumped).
        line: 1-based line of the problem, or None when it is not on a line.
        message: what is wrong, in words; never contains an option value.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line

    def __str__(self) -> str:
        if self.path is not None and self.line is not None:
            return f"{self.path}:{self.line}: {self.message}"
        if self.path is not None:
            return f"{self.path}: {self.message}"
        if self.line is not None:
            return f"line {self.line}: {self.message}"
        return self.message


def _shown(word: str) -> str:
    """A name or command word from a file, quoted and cut short for a message."""
    if len(word) > _SHOWN_MAX:
        return repr(word[:_SHOWN_MAX]) + "..."
    return repr(word)


def _is_secret(name: str) -> bool:
    return "KEY" in name.upper()


@dataclass(frozen=True, slots=True)
class _Piece:
    """A stretch of the source text kept for writing it back."""

    text: str
    joined: bool = False  # ends in the `;` that ends its statement
    open: bool = False  # ends the file in a backslash line join
    ignored: bool = False  # a statement libuci ignores: it stays inside its section

    @property
    def blank(self) -> bool:
        return not self.text.strip(_WS + "\n")


@dataclass(eq=False)
class _Stmt:
    """One config/option/list statement as it was in the file."""

    kind: str  # "config", "option" or "list"
    name: str  # option name ("" for config)
    value: str  # option value or list item (the type for config)
    raw: _Piece  # exact source text, up to and including its line end or ';'
    lead: list[_Piece]  # comment, blank and ignored lines right before it
    comment: str  # the rest of its line after the last argument, if a comment
    line: int


@dataclass(eq=False)
class _Document:
    """The parsed text; also the token that ties sections to their source."""

    text: str
    preamble: list[_Piece] = field(default_factory=list)
    parsed: list[UciSection] = field(default_factory=list)


@dataclass(eq=False)
class _Origin:
    """Where a section came from: its statements and the text around them."""

    doc: _Document
    index: int
    type: str
    name: str | None
    header: _Stmt
    stmts: list[_Stmt] = field(default_factory=list)
    trailing: list[_Piece] = field(default_factory=list)
    snapshot: list[tuple[str, str | tuple[str, ...]]] = field(default_factory=list)


@dataclass(repr=False)
class UciSection:
    """One `config` section.

    Attributes:
        type: the section type (`access`, `global`, ...).
        name: the section name, or None for an anonymous section (libuci
            calls those cfgXXXXXX; address them as ``@type[n]``).
        options: option name -> value (a str) or list items (a list of str),
            in the order libuci would list them.
        line: the line of the `config` statement, None for a new section.
    """

    type: str
    name: str | None = None
    options: dict[str, str | list[str]] = field(default_factory=dict)
    line: int | None = field(default=None, init=False, compare=False)
    _origin: _Origin | None = field(default=None, init=False, compare=False)

    def __repr__(self) -> str:
        options = {name: "<hidden>" if _is_secret(name) else value
                   for name, value in self.options.items()}
        return f"UciSection(type={self.type!r}, name={self.name!r}, options={options!r})"

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return option ``name`` as a string.

        A list gives its last item (a later value wins, as with repeated
        options); use :meth:`is_list` or ``options`` to tell the two apart.
        OpenWrt's init scripts read only options, not lists.

        Returns:
            The value, or ``default`` when the option is absent (or an empty
            list).
        """
        value = self.options.get(name)
        if value is None:
            return default
        if isinstance(value, list):
            return value[-1] if value else default
        return value

    def get_list(self, name: str) -> list[str]:
        """Return ``name`` as a new list: its items, ``[value]`` for an
        option, ``[]`` when absent."""
        value = self.options.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return list(value)
        return [value]

    def is_list(self, name: str) -> bool:
        """True if ``name`` is a `list` (not an `option`) in this section."""
        return isinstance(self.options.get(name), list)

    def line_of(self, name: str) -> int | None:
        """The line of the last statement that set ``name`` in the parsed
        file, or None (new option, or a section that was not parsed)."""
        if self._origin is None:
            return None
        lines = [stmt.line for stmt in self._origin.stmts if stmt.name == name]
        return lines[-1] if lines else None

    def set(self, name: str, value: str | list[str]) -> None:
        """Set option ``name`` to a string, or to a list of strings.

        An existing option keeps its place. As with ``uci set``, an empty
        string (or an empty list) deletes the option instead: libuci cannot
        store an empty option.

        Raises:
            UciError: ``name`` is not [A-Za-z0-9_]+, or a value contains NUL.
            TypeError: a value that is not a string or a list of strings.
        """
        _check_name(name, "option name")
        if isinstance(value, str):
            _check_value(name, value)
            if not value:
                self.options.pop(name, None)
                return
            self.options[name] = value
            return
        if not isinstance(value, list):
            raise TypeError(f"option {name}: a value is a str or a list of str")
        items = list(value)
        for item in items:
            if not isinstance(item, str):
                raise TypeError(f"option {name}: list items must be str")
            _check_value(name, item)
        if not items:
            self.options.pop(name, None)
            return
        self.options[name] = items

    def delete(self, name: str) -> None:
        """Remove option or list ``name``; nothing happens when it is absent."""
        self.options.pop(name, None)


@dataclass
class UciPackage:
    """The sections of one UCI file, in file order.

    ``sections`` may be edited directly; :meth:`add` and :meth:`remove` check
    names and identity for you.
    """

    sections: list[UciSection] = field(default_factory=list)
    _doc: _Document | None = field(default=None, init=False, compare=False, repr=False)

    def sections_of(self, type: str) -> list[UciSection]:
        """All sections of ``type``, in file order."""
        return [section for section in self.sections if section.type == type]

    def find(self, ref: str) -> UciSection:
        """Return the section ``ref`` names.

        Args:
            ref: a section name, or ``@type[n]``: the n-th section of that type
                counted from 0, or from the end when n is negative
                (``@access[-1]`` is the last access section).

        Raises:
            KeyError: no such section.
        """
        match = _REF.fullmatch(ref)
        if match is not None:
            of_type = self.sections_of(match.group(1))
            index = int(match.group(2))
            if -len(of_type) <= index < len(of_type):
                return of_type[index]
            raise KeyError(ref)
        for section in self.sections:
            if section.name == ref:
                return section
        raise KeyError(ref)

    def add(self, type: str, name: str | None = None) -> UciSection:
        """Append a new, empty section and return it.

        Raises:
            UciError: a bad type or name, or a section of that name exists.
        """
        _check_type(type)
        if name is not None:
            _check_name(name, "section name")
            if any(section.name == name for section in self.sections):
                raise UciError(f"a section named {_shown(name)} already exists")
        section = UciSection(type, name)
        self.sections.append(section)
        return section

    def remove(self, section: UciSection) -> None:
        """Remove this very section object (not an equal one).

        Raises:
            ValueError: the section is not in this package.
        """
        for index, other in enumerate(self.sections):
            if other is section:
                del self.sections[index]
                return
        raise ValueError("the section is not in this package")


def uci_bool(value: str | None) -> bool | None:
    """OpenWrt's get_bool: ``1 on true yes enabled`` -> True, ``0 off false
    no disabled`` -> False, anything else (other case, spaces) or None -> None."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


# ---------------------------------------------------------------------------
# Reading


class _Token(NamedTuple):
    value: str
    plain: bool  # no quotes and no backslash: usable as a command word
    pos: int


class _Parser:
    """One pass over the text: line groups -> statements -> sections."""

    def __init__(self, text: str, path: str | None) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.path = path
        self.eof_open = False
        self.doc = _Document(text)
        self.package = UciPackage()
        self.package._doc = self.doc
        self.current: UciSection | None = None
        self.pending: list[_Piece] = []
        self.named: dict[str, UciSection] = {}
        self._line_pos = 0
        self._line_no = 1

    def line(self, pos: int) -> int:
        if pos < self._line_pos:
            return self.text.count("\n", 0, pos) + 1
        self._line_no += self.text.count("\n", self._line_pos, pos)
        self._line_pos = pos
        return self._line_no

    def error(self, pos: int, message: str) -> NoReturn:
        raise UciError(message, self.path, self.line(pos))

    # -- scanning

    def continuation(self) -> bool:
        """At a backslash: skip it with the line break after it, if any."""
        after = self.pos + 1
        if after < self.n and self.text[after] == "\n":
            after += 1
        elif self.text.startswith("\r\n", after):
            after += 2
        elif after < self.n:
            return False
        self.pos = after
        if after >= self.n:
            self.eof_open = True
        return True

    def skip_ws(self) -> None:
        text = self.text
        while self.pos < self.n:
            char = text[self.pos]
            if char in _WS:
                self.pos += 1
            elif not (char == "\\" and self.continuation()):
                return

    def double_quoted(self, parts: list[str]) -> None:
        text, start = self.text, self.pos
        self.pos += 1
        while True:
            if self.pos >= self.n:
                self.error(start, 'unterminated " quote (it opens here)')
            char = text[self.pos]
            if char == '"':
                self.pos += 1
                return
            if char == "\\":
                if not self.continuation():
                    parts.append(text[self.pos + 1])
                    self.pos += 2
                continue
            run = _DQ_RUN.match(text, self.pos)
            assert run is not None
            parts.append(run.group())
            self.pos = run.end()

    def token(self) -> _Token:
        text, start = self.text, self.pos
        parts: list[str] = []
        plain = True
        while self.pos < self.n:
            char = text[self.pos]
            if char == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    self.error(self.pos, "unterminated ' quote (it opens here)")
                parts.append(text[self.pos + 1:end])
                self.pos = end + 1
                plain = False
            elif char == '"':
                self.double_quoted(parts)
                plain = False
            elif char == "\\":
                plain = False
                if not self.continuation():
                    parts.append(text[self.pos + 1])
                    self.pos += 2
            elif char in _WS or char in ";#\n":
                break
            else:
                run = _BARE_RUN.match(text, self.pos)
                assert run is not None
                parts.append(run.group())
                self.pos = run.end()
        return _Token("".join(parts), plain, start)

    def tokens(self) -> tuple[list[_Token], int]:
        """The arguments of one statement, and where the last one ends."""
        found: list[_Token] = []
        end = self.pos
        while True:
            self.skip_ws()
            if self.pos >= self.n or self.text[self.pos] in ";#\n":
                return found, end
            found.append(self.token())
            end = self.pos

    def run(self) -> UciPackage:
        text, n = self.text, self.n
        nul = text.find("\0")
        if nul >= 0:
            self.error(nul, "NUL character in the file")
        while self.pos < n:
            start = self.pos
            # One line group: a line, with the lines that quotes or a
            # backslash join to it; it may hold several statements.
            found: list[tuple[list[_Token], int, int]] = []
            while True:
                self.skip_ws()
                if self.pos >= n:
                    break
                char = text[self.pos]
                if char == "\n":
                    self.pos += 1
                    break
                if char == "#":
                    end = text.find("\n", self.pos)
                    self.pos = n if end < 0 else end
                elif char == ";":
                    self.pos += 1
                else:
                    tokens, token_end = self.tokens()
                    if self.pos < n and text[self.pos] == ";":
                        self.pos += 1
                    found.append((tokens, token_end, self.pos))
            end = self.pos
            if not found:
                self.inert(_Piece(text[start:end], open=self.eof_open))
                continue
            cut = start
            for index, (tokens, token_end, after) in enumerate(found):
                if index == len(found) - 1:
                    self.statement(tokens, _Piece(text[cut:end], open=self.eof_open),
                                   _comment(text[token_end:end]))
                else:
                    self.statement(tokens, _Piece(text[cut:after], joined=True), "")
                cut = after
        self.to_previous(self.pending)
        self.pending = []
        for section in self.package.sections:
            assert section._origin is not None
            section._origin.snapshot = _items(section)
        self.doc.parsed = list(self.package.sections)
        return self.package

    # -- statements

    def inert(self, piece: _Piece) -> None:
        self.pending.append(piece)

    def to_previous(self, pieces: list[_Piece]) -> None:
        if self.current is None:
            self.doc.preamble.extend(pieces)
        else:
            assert self.current._origin is not None
            self.current._origin.trailing.extend(pieces)

    def statement(self, tokens: list[_Token], raw: _Piece, comment: str) -> None:
        word = tokens[0]
        command = _COMMANDS.get(word.value) if word.plain else None
        if command is None:
            quoted = "" if word.plain else ", unquoted"
            self.error(word.pos, f"invalid command {_shown(word.value)} (expected config, "
                                 f"option, list or package{quoted})")
        line = self.line(word.pos)
        args = tokens[1:]
        if command == "package":
            if not args or not args[0].value:
                self.error(word.pos, "package without a name")
            if not _PACKAGE_NAME.fullmatch(args[0].value):
                self.error(args[0].pos, f"invalid package name {_shown(args[0].value)}")
            if len(args) > 1:
                self.error(args[1].pos, "too many arguments to package")
            self.inert(raw)
        elif command == "config":
            self.config(args, word, raw, comment, line)
        else:
            self.option(command, args, word, raw, comment, line)

    def config(self, args: list[_Token], word: _Token, raw: _Piece, comment: str,
               line: int) -> None:
        if not args or not args[0].value:
            self.error(word.pos, "config without a section type")
        type_ = args[0].value
        if not _TYPE.fullmatch(type_):
            self.error(args[0].pos, f"invalid section type {_shown(type_)} (printable ASCII "
                                    "without spaces)")
        name = args[1].value if len(args) > 1 else ""
        if name and not _NAME.fullmatch(name):
            self.error(args[1].pos, f"invalid section name {_shown(name)} (letters, digits "
                                    "and _ only)")
        if len(args) > 2:
            self.error(args[2].pos, "too many arguments to config (a section name cannot "
                                    "contain spaces)")
        before, after = _split_at(self.pending, lambda piece: piece.blank or piece.ignored)
        self.to_previous(before)
        self.pending = []
        reopened = self.named.get(name) if name else None
        if reopened is not None:
            if reopened.type != type_:
                self.error(args[0].pos, f"section {_shown(name)} was of type "
                                        f"{_shown(reopened.type)}, cannot reopen it as "
                                        f"{_shown(type_)}")
            # libuci continues the section. When the package is rebuilt the
            # section is written once, so this header is dropped and the lines
            # before it lead the section's next statement.
            self.pending = after
            self.current = reopened
            return
        section = UciSection(type_, name or None)
        section.line = line
        header = _Stmt("config", "", type_, raw, after, comment, line)
        section._origin = _Origin(self.doc, len(self.package.sections), type_, name or None,
                                  header)
        self.package.sections.append(section)
        if name:
            self.named[name] = section
        self.current = section

    def option(self, command: str, args: list[_Token], word: _Token, raw: _Piece,
               comment: str, line: int) -> None:
        section = self.current
        if section is None:
            self.error(word.pos, f"{command} before the first config section")
        if not args or not args[0].value:
            self.error(word.pos, f"{command} without a name")
        name = args[0].value
        if not _NAME.fullmatch(name):
            self.error(args[0].pos, f"invalid {command} name {_shown(name)} (letters, digits "
                                    "and _ only)")
        if len(args) > 2:
            self.error(args[2].pos, f"too many arguments to {command} {name} (a value with "
                                    "spaces must be quoted)")
        value = args[1].value if len(args) > 1 else ""
        if command == "option" and not value:
            # libuci ignores it (see the header); as a statement it must stay
            # after a config line, so it never leads a section.
            self.inert(_Piece(raw.text, raw.joined, raw.open, ignored=True))
            return
        origin = section._origin
        assert origin is not None
        origin.stmts.append(_Stmt(command, name, value, raw, self.pending, comment, line))
        self.pending = []
        options = section.options
        old = options.get(name)
        if command == "list":
            if isinstance(old, list):
                old.append(value)
            else:
                options.pop(name, None)
                options[name] = [value] if old is None else [old, value]
        elif old != value:
            options.pop(name, None)
            options[name] = value


def _comment(tail: str) -> str:
    """What follows a line's last argument, kept when it holds a comment."""
    tail = tail.removesuffix("\n")
    return tail if "#" in tail else ""


def _split_at(pieces: list[_Piece],
              edge: Callable[[_Piece], bool]) -> tuple[list[_Piece], list[_Piece]]:
    """Split after the last edge piece (a blank line): (older blocks, the
    block right above what follows)."""
    for index in range(len(pieces) - 1, -1, -1):
        if edge(pieces[index]):
            return pieces[:index + 1], pieces[index + 1:]
    return [], pieces


def parse(text: str, path: str | None = None) -> UciPackage:
    """Parse the text of a UCI file.

    Args:
        text: the file's content (decode bytes with ``surrogateescape`` to keep
            every byte; load() does).
        path: the file name for error messages.

    Raises:
        UciError: the first syntax error, with its line.
    """
    return _Parser(text, path).run()


def load(path: str | Path) -> UciPackage:
    """Read and parse a UCI file (bytes that are not UTF-8 are kept).

    Raises:
        UciError: the file cannot be read (``__cause__`` is the OSError), is
            larger than MAX_FILE_BYTES, or does not parse.
    """
    name = str(path)
    try:
        with open(name, "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise UciError(f"cannot read the file: {err.strerror or err}", name) from err
    if len(data) > MAX_FILE_BYTES:
        raise UciError(f"the file is larger than {MAX_FILE_BYTES} bytes", name)
    return parse(data.decode("utf-8", "surrogateescape"), name)


# ---------------------------------------------------------------------------
# Writing


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = _shown(name) if isinstance(name, str) else type(name).__name__
        raise UciError(f"invalid {what} {shown} (letters, digits and _ only)")


def _check_type(type_: object) -> None:
    if not isinstance(type_, str) or not _TYPE.fullmatch(type_):
        shown = _shown(type_) if isinstance(type_, str) else type(type_).__name__
        raise UciError(f"invalid section type {shown} (printable ASCII without spaces)")


def _check_value(name: str, value: str) -> None:
    if "\0" in value:
        raise UciError(f"option {name}: a value cannot contain a NUL character (libuci cannot "
                       "store it)")


def _check_package(package: UciPackage) -> None:
    names: set[str] = set()
    for section in package.sections:
        _check_type(section.type)
        if section.name is not None:
            _check_name(section.name, "section name")
            if section.name in names:
                raise UciError(f"two sections are named {_shown(section.name)}")
            names.add(section.name)
        for name, value in section.options.items():
            _check_name(name, "option name")
            if isinstance(value, str):
                _check_value(name, value)
            elif isinstance(value, list) and all(isinstance(item, str) for item in value):
                for item in value:
                    _check_value(name, item)
            else:
                raise UciError(f"option {name}: a value is a str or a list of str")


def _items(section: UciSection) -> list[tuple[str, str | tuple[str, ...]]]:
    return [(name, value if isinstance(value, str) else tuple(value))
            for name, value in section.options.items()]


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _header(type_: str, name: str | None, comment: str) -> str:
    shown = type_ if _BARE_TYPE.fullmatch(type_) else _quote(type_)
    named = f" {_quote(name)}" if name is not None else ""
    return f"config {shown}{named}{comment}\n"


def _line(kind: str, name: str, value: str, comment: str) -> str:
    return f"\t{kind} {name} {_quote(value)}{comment}\n"


class _Emitter:
    """Collects output pieces and keeps statements apart."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.last = _Piece("")
        self.collapse = False  # drop the next blank line (after a kept orphan block)

    def separate(self) -> None:
        last = self.last
        if not last.text:
            return
        if last.open:
            # The first line end only completes the join.
            self.parts.append("\n" if last.text.endswith("\n") else "\n\n")
        elif not last.text.endswith("\n") and not last.joined:
            self.parts.append("\n")
        else:
            return
        self.last = _Piece("\n")

    def write(self, piece: _Piece | str) -> None:
        if isinstance(piece, str):
            piece = _Piece(piece)
        if not piece.text:
            return
        if self.collapse and piece.blank:
            self.collapse = False
            return
        self.collapse = False
        self.separate()
        self.parts.append(piece.text)
        self.last = piece

    def spans(self, pieces: list[_Piece]) -> None:
        for piece in pieces:
            self.write(piece)

    def orphan(self, lead: list[_Piece]) -> None:
        """Keep the older comment blocks above a statement that is gone."""
        kept, _ = _split_at(lead, lambda piece: piece.blank)
        self.spans(kept)
        if kept:
            self.collapse = True

    def floating(self, trailing: list[_Piece]) -> None:
        """Keep what stood apart (after a blank line) at the end of a removed
        section, without doubling the blank line before it."""
        start = 0
        while start < len(trailing) and not trailing[start].blank:
            start += 1
        while (start < len(trailing) and trailing[start].blank
               and (not self.parts or self._ends_with_blank_line())):
            start += 1
        # An ignored statement is a no-op, and would need a section above it.
        self.spans([piece for piece in trailing[start:] if not piece.ignored])

    def ensure_blank_line(self) -> None:
        self.collapse = False
        if not self.parts:
            return
        self.separate()
        if not self.parts[-1].endswith("\n"):
            self.parts.append("\n")
        if not self._ends_with_blank_line():
            self.parts.append("\n")
        self.last = _Piece("\n")

    def _ends_with_blank_line(self) -> bool:
        tail = ""
        for piece in reversed(self.parts):
            tail = piece + tail
            if tail.count("\n") >= 2:
                break
        if not tail.endswith("\n"):
            return False
        body = tail[:-1]
        return not body[body.rfind("\n") + 1:].strip(_WS)

    def value(self, name: str, value: str | list[str], comment: str) -> None:
        if isinstance(value, str):
            if value:
                self.write(_line("option", name, value, comment))
            return
        for index, item in enumerate(value):
            self.write(_line("list", name, item, comment if index == 0 else ""))


def _same(value: str | list[str], old: str | tuple[str, ...] | None) -> bool:
    if isinstance(value, str):
        return isinstance(old, str) and value == old
    return isinstance(old, tuple) and tuple(value) == old


def _emit_group(out: _Emitter, name: str, value: str | list[str], group: list[_Stmt],
                old: str | tuple[str, ...] | None, canonical: bool) -> None:
    """Write one option or list that the parsed section had."""
    if not canonical and _same(value, old):
        for stmt in group:
            out.spans(stmt.lead)
            out.write(stmt.raw)
        return
    if isinstance(value, list) and all(stmt.kind == "list" for stmt in group):
        # Item by item: an item that is still in its place keeps its line.
        for index, item in enumerate(value):
            if index >= len(group):
                out.write(_line("list", name, item, ""))
                continue
            stmt = group[index]
            out.spans(stmt.lead)
            if not canonical and stmt.value == item:
                out.write(stmt.raw)
            else:
                out.write(_line("list", name, item, stmt.comment))
        for stmt in group[len(value):]:
            out.orphan(stmt.lead)
        return
    for stmt in group:
        out.spans(stmt.lead)
    out.value(name, value, group[-1].comment if group else "")


def _emit_known(out: _Emitter, section: UciSection, origin: _Origin, canonical: bool) -> None:
    """Write a section that was parsed, copying what did not change."""
    out.spans(origin.header.lead)
    if canonical or (section.type, section.name) != (origin.type, origin.name):
        out.write(_header(section.type, section.name, origin.header.comment))
    else:
        out.write(origin.header.raw)
    if not canonical and _items(section) == origin.snapshot:
        for stmt in origin.stmts:
            out.spans(stmt.lead)
            out.write(stmt.raw)
        out.spans(origin.trailing)
        return
    groups: dict[str, list[_Stmt]] = {}
    first: dict[str, int] = {}
    for index, stmt in enumerate(origin.stmts):
        groups.setdefault(stmt.name, []).append(stmt)
        first.setdefault(stmt.name, index)
    old = dict(origin.snapshot)
    orphans = [(index, stmt) for index, stmt in enumerate(origin.stmts)
               if stmt.name not in section.options]
    current = list(section.options.items())
    # New options at the end of the section go after its last comments.
    cut = len(current)
    while cut > 0 and current[cut - 1][0] not in groups:
        cut -= 1
    done = 0
    for name, value in current[:cut]:
        if name in groups:
            while done < len(orphans) and orphans[done][0] < first[name]:
                out.orphan(orphans[done][1].lead)
                done += 1
        _emit_group(out, name, value, groups.get(name, []), old.get(name), canonical)
    for _, stmt in orphans[done:]:
        out.orphan(stmt.lead)
    # The comments right after the last statement (no blank line between)
    # are the section's own: new options go after them.
    end = 0
    while end < len(origin.trailing) and not origin.trailing[end].blank:
        end += 1
    out.spans(origin.trailing[:end])
    for name, value in current[cut:]:
        out.value(name, value, "")
    out.spans(origin.trailing[end:])


def _unchanged(package: UciPackage, doc: _Document) -> bool:
    if len(package.sections) != len(doc.parsed):
        return False
    for section, parsed in zip(package.sections, doc.parsed):
        origin = section._origin
        if (section is not parsed or origin is None or origin.doc is not doc
                or (section.type, section.name) != (origin.type, origin.name)
                or _items(section) != origin.snapshot):
            return False
    return True


def dump(package: UciPackage, *, canonical: bool = False) -> str:
    """Return the text of a UCI file holding ``package``.

    A parsed package keeps its comments and blank lines and, where nothing
    changed, the exact text of its lines (an unchanged package gives back the
    parsed text). Changed and new lines are written in canonical style.

    Args:
        canonical: write every statement in canonical style, still keeping
            comments and blank lines.

    Raises:
        UciError: a bad type or name, two sections with one name, or a value
            that is not a str / list of str or contains NUL.
    """
    _check_package(package)
    doc = package._doc
    if doc is not None and not canonical and _unchanged(package, doc):
        return doc.text
    out = _Emitter()
    previous: int | None = None
    origins = [section._origin if doc is not None and section._origin is not None
               and section._origin.doc is doc else None for section in package.sections]
    removed: list[_Origin] = []
    if doc is not None:
        out.spans(doc.preamble)
        previous = -1
        kept = {id(section) for section in package.sections}
        removed = [section._origin for section in doc.parsed
                   if id(section) not in kept and section._origin is not None]
    # The lowest index of a parsed section still to come, at each position.
    never = len(doc.parsed) if doc is not None else 0
    upcoming = [never] * (len(origins) + 1)
    for position in range(len(origins) - 1, -1, -1):
        origin = origins[position]
        upcoming[position] = min(upcoming[position + 1],
                                 never if origin is None else origin.index)
    flushed = 0
    for position, section in enumerate(package.sections):
        # Comment blocks that stood apart after a removed section stay.
        while flushed < len(removed) and removed[flushed].index < upcoming[position]:
            out.floating(removed[flushed].trailing)
            flushed += 1
        origin = origins[position]
        if origin is None or previous is None or origin.index <= previous:
            out.ensure_blank_line()
        if origin is None:
            out.write(_header(section.type, section.name, ""))
            for name, value in section.options.items():
                out.value(name, value, "")
            previous = None
        else:
            _emit_known(out, section, origin, canonical)
            previous = origin.index
    for origin in removed[flushed:]:
        out.floating(origin.trailing)
    text = "".join(out.parts)
    if doc is not None and doc.parsed and previous != len(doc.parsed) - 1:
        # The file's last section is gone or moved: drop the blank lines
        # that used to separate the section now last from the next one.
        while text.endswith("\n\n"):
            text = text[:-1]
    return text


def export(package: UciPackage, name: str) -> str:
    """Return ``package`` as ``uci export <name>`` prints it: a package line,
    each section after a blank line, anonymous sections unnamed, no comments.

    Raises:
        UciError: as dump(), or a bad package name.
    """
    if not _PACKAGE_NAME.fullmatch(name):
        raise UciError(f"invalid package name {_shown(name)}")
    _check_package(package)
    out = _Emitter()
    out.write(f"package {name}\n")
    for section in package.sections:
        out.write("\n")
        out.write(_header(section.type, section.name, ""))
        for option, value in section.options.items():
            out.value(option, value, "")
    out.write("\n")
    return "".join(out.parts)


def save(path: str | Path, package: UciPackage) -> None:
    """Write ``package`` to ``path`` atomically.

    The text goes to a temporary file in the same directory, which is
    flushed, fsynced and renamed over the target (a symlink is followed, as
    libuci does). An existing file keeps its mode and owner; a new file gets
    0600 when some option name contains "key" in any case (fwknopd's KEY,
    HMAC_KEY, ...), else 0644. On any error the target is untouched and the
    temporary file is removed.

    Raises:
        UciError: as dump(), a value that cannot be encoded, or an OS error
            (``__cause__`` holds it).
    """
    name = str(path)
    text = dump(package)
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as err:
        raise UciError("a value holds characters that cannot be written as UTF-8", name) from err
    target = Path(os.path.realpath(name))
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    except OSError as err:
        raise UciError(f"cannot check the file: {err.strerror or err}", name) from err
    if old is not None and not stat.S_ISREG(old.st_mode):
        raise UciError("not a regular file", name)
    if old is not None:
        mode = stat.S_IMODE(old.st_mode)
    else:
        secret = any(_is_secret(option) for section in package.sections
                     for option in section.options)
        mode = 0o600 if secret else 0o644
    temp: str | None = None
    done = False
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".uci-new",
                                    dir=target.parent)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            if old is not None:
                info = os.fstat(stream.fileno())
                if (info.st_uid, info.st_gid) != (old.st_uid, old.st_gid):
                    os.fchown(stream.fileno(), old.st_uid, old.st_gid)
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temp, target)
        done = True
    except OSError as err:
        raise UciError(f"cannot write the file: {err.strerror or err}", name) from err
    finally:
        if temp is not None and not done:
            try:
                os.unlink(temp)
            except OSError:
                pass  # it is gone already, or the directory refuses us anyway
    _sync_directory(target.parent)


def _sync_directory(directory: Path) -> None:
    # Make the rename durable. The file's data is already on disk; a file
    # system that cannot fsync a directory only loses that guarantee.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
