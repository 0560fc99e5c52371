# The page's form and /etc/config/fwknopd, both ways.
#
# Purpose: the page edits UCI without dropping or rewriting anything it was
# not asked to change. A page that is posted back unchanged leaves the file
# byte for byte as it was; an edit changes exactly the options it touches,
# and uci.save keeps the comments and layout around them.
#
# Model: a Form holds the page's state: the first `global`, `network` and
# `config` sections and every `access` section, each field as the text the
# browser shows. form_from_package reads it from UCI; form_from_post from a
# POST (a text field that is not in the POST keeps its UCI value; a checkbox
# that is not in it is unchecked, as HTML sends it); apply writes a Form onto
# a freshly loaded package, changing an option only when its value differs
# (flags and digest names by meaning, so `y` stays `y`). Options without a
# field of their own are "extra" rows (name, value, and the name they had),
# so nothing is dropped: a row that is cleared deletes its option, a renamed
# row moves it. A flag whose UCI value is no boolean is shown as a text field
# with that value (a checkbox could only overwrite it), so saving reports it
# at its field and the user decides. Each access stanza carries the index of the UCI section it
# came from (`origin`), so Add and Remove can be re-rendered without saving
# and then saved onto the right sections.
#
# Errors: apply reports what it cannot write (a bad option name, NUL) by
# field id; place_errors puts validate_package's errors at the field of the
# option they name, and the rest in a list for the top of the page.
#
# Invariants: for every package P, apply(form_from_package(P), P) changes
# nothing. Stanza origins are strictly increasing and new stanzas come
# last, so the n-th access section after apply is the form's n-th stanza.

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ..openwrt.uci import UciPackage, UciSection, uci_bool
from ..openwrt.validate import (
    ValidationError,
    normalize_value,
    section_ref,
    validate_option,
    value_text,
)
from .fields import (
    ACCESS_FIELDS,
    ACCESS_NAMES,
    CONFIG_FIELDS,
    CONFIG_NAMES,
    KEY_TYPES,
    Field,
)
from .i18n import _

__all__ = [
    "MAX_EXTRAS",
    "MAX_STANZAS",
    "Applied",
    "Extra",
    "Form",
    "FormConflict",
    "FormError",
    "PostData",
    "Stanza",
    "apply",
    "field_id",
    "form_from_package",
    "form_from_post",
    "is_flag_text",
    "new_stanza",
    "place_errors",
]

#: Bounds on what a POST may describe (a router has a handful of stanzas).
MAX_STANZAS: Final = 64
MAX_EXTRAS: Final = 128

PostData = Mapping[str, Sequence[str]]

_OPTION_NAME: Final = re.compile(r"[A-Za-z0-9_]+")
_STANZA_KEY: Final = re.compile(r"access\.([0-9]{1,3})\.")
_EXTRA_KEY: Final = re.compile(r"([0-9]{1,4})\.(?:name|value|orig)")
_VERB_START: Final = ("is ", "contains ", "decodes ", "starts ", "must ", "has ", "an item ",
                      "are ")


class FormError(Exception):
    """The POST does not describe this page's form (answered 400)."""


class FormConflict(FormError):
    """The POST was made from a page of a configuration that has changed
    since (answered 409)."""


@dataclass
class Extra:
    """An option without a field of its own, as an editable row.

    Attributes:
        orig: the option's name when the row was rendered ("" for a new row).
        name: the option name in the row now.
        value: its value.
    """

    orig: str
    name: str
    value: str


@dataclass
class Stanza:
    """One access stanza of the form.

    Attributes:
        origin: the index of the UCI access section it shows, None if new.
        values: option -> text of the fields in fields.ACCESS_FIELDS (flags
            are "Y" when checked, "" when not, or the UCI text when that is
            no boolean).
        key, key_type: the encryption key and "base64" or "plain".
        hmac_key, hmac_key_type: the HMAC key and its type.
        extras: the section's other options.
    """

    origin: int | None
    values: dict[str, str]
    key: str = ""
    key_type: str = "base64"
    hmac_key: str = ""
    hmac_key_type: str = "base64"
    extras: list[Extra] = field(default_factory=list)

    def key_option(self) -> str:
        """The UCI option the key field writes: KEY_BASE64 or KEY."""
        return KEY_TYPES[self.key_type][0]

    def hmac_option(self) -> str:
        """The UCI option the HMAC key field writes: HMAC_KEY_BASE64 or HMAC_KEY."""
        return KEY_TYPES[self.hmac_key_type][1]


@dataclass
class Form:
    """The whole page's state.

    Attributes:
        uci_enabled: global.uci_enabled: "1" checked, "" unchecked, other
            text for a value that is no boolean.
        network: network.network.
        config: option -> text of the fields in fields.CONFIG_FIELDS.
        config_extras: the config section's other options.
        stanzas: the access stanzas, in order.
        digest: the SHA-256 (hex) of the file the page was made from.
        show_keys: render the key fields as plain text.
    """

    uci_enabled: str
    network: str
    config: dict[str, str]
    config_extras: list[Extra]
    stanzas: list[Stanza]
    digest: str = ""
    show_keys: bool = False


def field_id(name: str) -> str:
    """The HTML id of a field: its name with '.' replaced by '-'."""
    return name.replace(".", "-")


def _shown(value: str | list[str]) -> str:
    """An option's value as the browser shows it (bytes that are not UTF-8
    become U+FFFD, so an unchanged field compares equal)."""
    text = value_text(value)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _first(pkg: UciPackage, type_: str) -> UciSection | None:
    sections = pkg.sections_of(type_)
    return sections[0] if sections else None


def _flag_state(section_type: str, section: UciSection | None, spec: Field) -> bool | None:
    """A flag's meaning: True/False, None for a value that is not a boolean."""
    value = section.get(spec.option) if section is not None else None
    if value is None or value == "":
        return spec.default_on
    if validate_option(section_type, spec.option, value) is not None:
        return None
    return normalize_value(section_type, spec.option, value) == "Y"


def is_flag_text(value: str, checked: str = "Y") -> bool:
    """True if a flag's form value is a checkbox state, not raw UCI text."""
    return value in (checked, "")


def _field_text(section_type: str, section: UciSection | None, spec: Field) -> str:
    if spec.kind == "flag":
        state = _flag_state(section_type, section, spec)
        if state is None and section is not None:
            return _shown(section.options[spec.option])
        return "Y" if state else ""
    if section is None or spec.option not in section.options:
        return ""
    return _shown(section.options[spec.option])


def _key_source(section: UciSection, base64_name: str, plain_name: str) -> str | None:
    """The option the key field shows: the base64 one when set, else the plain one."""
    for name in (base64_name, plain_name):
        if section.get(name):
            return name
    return None


def new_stanza() -> Stanza:
    """An empty stanza, as the Add button makes it."""
    return Stanza(None, {spec.option: _field_text("access", None, spec)
                         for spec in ACCESS_FIELDS})


def _stanza_from_section(index: int, section: UciSection) -> Stanza:
    stanza = Stanza(index, {spec.option: _field_text("access", section, spec)
                            for spec in ACCESS_FIELDS})
    dedicated = set(ACCESS_NAMES)
    key = _key_source(section, "KEY_BASE64", "KEY")
    if key is not None:
        stanza.key, stanza.key_type = _shown(section.options[key]), \
            "base64" if key == "KEY_BASE64" else "plain"
        dedicated.add(key)
    hmac_key = _key_source(section, "HMAC_KEY_BASE64", "HMAC_KEY")
    if hmac_key is not None:
        stanza.hmac_key, stanza.hmac_key_type = _shown(section.options[hmac_key]), \
            "base64" if hmac_key == "HMAC_KEY_BASE64" else "plain"
        dedicated.add(hmac_key)
    stanza.extras = [Extra(name, name, _shown(value)) for name, value in section.options.items()
                     if name not in dedicated]
    return stanza


def form_from_package(pkg: UciPackage, digest: str = "") -> Form:
    """The form that shows ``pkg``."""
    glob, net, conf = _first(pkg, "global"), _first(pkg, "network"), _first(pkg, "config")
    raw = glob.get("uci_enabled") if glob is not None else None
    state = False if raw is None else uci_bool(raw)
    enabled = _shown(raw) if state is None and raw is not None else "1" if state else ""
    network = _shown(net.options["network"]) if net is not None and "network" in net.options \
        else ""
    config = {spec.option: _field_text("config", conf, spec) for spec in CONFIG_FIELDS}
    extras = [] if conf is None else [
        Extra(name, name, _shown(value)) for name, value in conf.options.items()
        if name not in CONFIG_NAMES]
    stanzas = [_stanza_from_section(index, section)
               for index, section in enumerate(pkg.sections_of("access"))]
    return Form(enabled, network, config, extras, stanzas, digest)


# ---------------------------------------------------------------------------
# From a POST


class _Post:
    def __init__(self, data: PostData) -> None:
        self.data = data

    def get(self, name: str) -> str | None:
        values = self.data.get(name)
        return values[0] if values else None

    def has(self, name: str) -> bool:
        return name in self.data

    def with_prefix(self, prefix: str) -> Iterable[str]:
        return (name[len(prefix):] for name in self.data if name.startswith(prefix))


def _posted_flag(post: _Post, name: str, current: str, checked: str) -> str:
    if is_flag_text(current, checked):
        return checked if post.has(name) else ""
    value = post.get(name)  # shown as a text field: see the module comment
    return current if value is None else value


def _posted_field(post: _Post, name: str, spec: Field, current: str) -> str:
    if spec.kind == "flag":
        return _posted_flag(post, name, current, "Y")
    value = post.get(name)
    return current if value is None else value


def _posted_extras(post: _Post, prefix: str, current: list[Extra]) -> list[Extra]:
    rows: set[int] = set()
    for rest in post.with_prefix(prefix):
        match = _EXTRA_KEY.fullmatch(rest)
        if match is None:
            raise FormError(f"unexpected field {prefix}{rest[:40]}")
        rows.add(int(match.group(1)))
    if not rows:
        return [Extra(e.orig, e.name, e.value) for e in current]
    if len(rows) > MAX_EXTRAS:
        raise FormError(f"more than {MAX_EXTRAS} option rows")
    extras = []
    for row in sorted(rows):
        extra = Extra(post.get(f"{prefix}{row}.orig") or "", post.get(f"{prefix}{row}.name") or "",
                      post.get(f"{prefix}{row}.value") or "")
        if extra.orig or extra.name or extra.value:
            extras.append(extra)
    return extras


def _posted_key_type(post: _Post, name: str, current: str) -> str:
    value = post.get(name)
    if value is None:
        return current
    if value not in KEY_TYPES:
        raise FormError(f"{name} must be one of {', '.join(KEY_TYPES)}")
    return value


def _stanza_count(post: _Post, current: int) -> int:
    count = post.get("access_count")
    if count is not None:
        if not count.isascii() or not count.isdigit() or int(count) > MAX_STANZAS:
            raise FormError("access_count is not a number of stanzas")
        return int(count)
    found = [int(m.group(1)) for name in post.data if (m := _STANZA_KEY.match(name))]
    if not found:
        return current
    return max(found) + 1


def _origin(post: _Post, index: int, existing: int) -> int | None:
    value = post.get(f"access.{index}.origin")
    if value is None:
        return index if index < existing else None
    if value in ("", "new"):
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 4:
        raise FormError(f"access.{index}.origin is not a stanza index")
    if int(value) >= existing:
        raise FormConflict("the form names an access section that is no longer there")
    return int(value)


def form_from_post(data: PostData, pkg: UciPackage) -> Form:
    """The form a POST describes, on top of ``pkg`` (the file as it is now).

    Raises:
        FormError: the POST does not describe this page's form.
        FormConflict: it names access sections that the file no longer has.
    """
    post = _Post(data)
    base = form_from_package(pkg)
    config = {spec.option: _posted_field(post, f"config.{spec.option}", spec,
                                         base.config[spec.option])
              for spec in CONFIG_FIELDS}
    network = post.get("network")
    enabled = _posted_flag(post, "uci_enabled", base.uci_enabled, "1")
    form = Form(enabled, base.network if network is None else network, config,
                _posted_extras(post, "config.extra.", base.config_extras), [],
                post.get("uci_digest") or "", post.get("show_keys") == "1")
    count = _stanza_count(post, len(base.stanzas))
    if count > MAX_STANZAS:
        raise FormError(f"more than {MAX_STANZAS} access stanzas")
    last: int | None = -1
    for index in range(count):
        origin = _origin(post, index, len(base.stanzas))
        if origin is not None and (last is None or origin <= last):
            raise FormError("the access stanzas are out of order")
        last = origin if origin is not None else None
        current = base.stanzas[origin] if origin is not None else new_stanza()
        prefix = f"access.{index}."
        stanza = Stanza(origin, {
            spec.option: _posted_field(post, prefix + spec.option, spec,
                                       current.values[spec.option])
            for spec in ACCESS_FIELDS})
        posted_key, posted_hmac = post.get(prefix + "key"), post.get(prefix + "hmac_key")
        stanza.key = current.key if posted_key is None else posted_key
        stanza.key_type = _posted_key_type(post, prefix + "key_type", current.key_type)
        stanza.hmac_key = current.hmac_key if posted_hmac is None else posted_hmac
        stanza.hmac_key_type = _posted_key_type(post, prefix + "hmac_key_type",
                                                current.hmac_key_type)
        stanza.extras = _posted_extras(post, prefix + "extra.", current.extras)
        form.stanzas.append(stanza)
    return form


# ---------------------------------------------------------------------------
# Onto UCI


class _Target:
    """A section to write to, made on the first write when it is missing."""

    def __init__(self, pkg: UciPackage, type_: str, section: UciSection | None) -> None:
        self.pkg = pkg
        self.type = type_
        self.section = section

    def make(self) -> UciSection:
        if self.section is None:
            self.section = self.pkg.add(self.type)
        return self.section


@dataclass
class Applied:
    """What apply did, for placing errors and drawing QR codes.

    Attributes:
        errors: field id -> what could not be written.
        stanzas: the access section of each stanza of the form, in order.
        sections: "global"/"network"/"config" -> the section the form wrote
            to (or would have), None when there is none.
    """

    errors: dict[str, list[str]]
    stanzas: list[UciSection]
    sections: dict[str, UciSection | None]


def _set_text(target: _Target, option: str, new: str, fid: str,
              errors: dict[str, list[str]], *, fold: bool = False) -> None:
    section = target.section
    current = section.options.get(option) if section is not None else None
    if current is None:
        if new == "":
            return
    else:
        shown = _shown(current)
        if shown == new or (fold and shown.lower() == new.lower()):
            return
    if "\x00" in new:
        errors[fid].append(_("contains a NUL character"))
        return
    if new == "" and section is not None:
        section.delete(option)
        return
    target.make().set(option, new)


def _set_flag(target: _Target, section_type: str, spec: Field, value: str, fid: str,
              errors: dict[str, list[str]]) -> None:
    if not is_flag_text(value):
        _set_text(target, spec.option, value, fid, errors)
        return
    checked = value == "Y"
    if _flag_state(section_type, target.section, spec) == checked:
        return
    if checked:
        target.make().set(spec.option, "Y")
    elif spec.default_on:
        target.make().set(spec.option, "N")
    elif target.section is not None:
        target.section.delete(spec.option)


def _set_fields(target: _Target, section_type: str, specs: Sequence[Field],
                values: Mapping[str, str], prefix: str, errors: dict[str, list[str]]) -> None:
    for spec in specs:
        value, fid = values[spec.option], field_id(prefix + spec.option)
        if spec.kind == "flag":
            _set_flag(target, section_type, spec, value, fid, errors)
        else:
            _set_text(target, spec.option, value, fid, errors, fold=spec.kind == "select")


def _set_extras(target: _Target, extras: Sequence[Extra], dedicated: frozenset[str],
                prefix: str, errors: dict[str, list[str]]) -> None:
    good: list[int] = []
    names: set[str] = set()
    for row, extra in enumerate(extras):
        fid = field_id(f"{prefix}{row}.name")
        if not extra.name:
            if extra.value:
                errors[fid].append(_("give the option a name, or clear its value"))
            elif extra.orig and extra.orig not in dedicated and target.section is not None:
                target.section.delete(extra.orig)
        elif _OPTION_NAME.fullmatch(extra.name) is None:
            errors[fid].append(_("is not an option name (letters, digits and _ only)"))
        elif extra.name in dedicated:
            errors[fid].append(_("%(name)s has its own field above") % {"name": extra.name})
        elif extra.name in names:
            errors[fid].append(_("%(name)s is listed twice") % {"name": extra.name})
        else:
            names.add(extra.name)
            good.append(row)
    for row in good:
        orig = extras[row].orig
        if orig and orig != extras[row].name and orig not in names and orig not in dedicated \
                and target.section is not None:
            target.section.delete(orig)
    for row in good:
        _set_text(target, extras[row].name, extras[row].value, field_id(f"{prefix}{row}.value"),
                  errors)


def _set_key(target: _Target, value: str, chosen: str, pair: tuple[str, str], fid: str,
             extras: Sequence[Extra], errors: dict[str, list[str]]) -> None:
    _set_text(target, chosen, value, fid, errors)
    other = pair[1] if chosen == pair[0] else pair[0]
    claimed = {e.orig for e in extras} | {e.name for e in extras}
    if target.section is not None and other in target.section.options and other not in claimed:
        target.section.delete(other)


def _apply_stanza(section: UciSection, pkg: UciPackage, stanza: Stanza, index: int,
                  errors: dict[str, list[str]]) -> None:
    target = _Target(pkg, "access", section)
    prefix = f"access.{index}."
    _set_fields(target, "access", ACCESS_FIELDS, stanza.values, prefix, errors)
    key, hmac_key = stanza.key_option(), stanza.hmac_option()
    _set_key(target, stanza.key, key, ("KEY_BASE64", "KEY"), field_id(prefix + "key"),
             stanza.extras, errors)
    _set_key(target, stanza.hmac_key, hmac_key, ("HMAC_KEY_BASE64", "HMAC_KEY"),
             field_id(prefix + "hmac_key"), stanza.extras, errors)
    _set_extras(target, stanza.extras, ACCESS_NAMES | {key, hmac_key}, prefix + "extra.",
                errors)


def apply(form: Form, pkg: UciPackage) -> Applied:
    """Write ``form`` onto ``pkg`` (in place), changing only what differs.

    Raises:
        FormConflict: the form's stanzas name access sections ``pkg`` lacks.
    """
    errors: dict[str, list[str]] = defaultdict(list)
    glob = _Target(pkg, "global", _first(pkg, "global"))
    if not is_flag_text(form.uci_enabled, "1"):
        _set_text(glob, "uci_enabled", form.uci_enabled, "uci_enabled", errors)
    else:
        current = glob.section.get("uci_enabled") if glob.section is not None else None
        # An absent option is off; a value that is no boolean differs from both.
        enabled = False if current is None else uci_bool(current)
        if (form.uci_enabled == "1") != enabled:
            if form.uci_enabled == "1":
                glob.make().set("uci_enabled", "1")
            elif glob.section is not None:
                glob.section.delete("uci_enabled")
    net = _Target(pkg, "network", _first(pkg, "network"))
    _set_text(net, "network", form.network, "network", errors)
    conf = _Target(pkg, "config", _first(pkg, "config"))
    _set_fields(conf, "config", CONFIG_FIELDS, form.config, "config.", errors)
    _set_extras(conf, form.config_extras, CONFIG_NAMES, "config.extra.", errors)

    existing = pkg.sections_of("access")
    kept = {stanza.origin for stanza in form.stanzas if stanza.origin is not None}
    if any(origin >= len(existing) for origin in kept):
        raise FormConflict("the form names an access section that is no longer there")
    for index, section in enumerate(existing):
        if index not in kept:
            pkg.remove(section)
    sections = []
    for index, stanza in enumerate(form.stanzas):
        section = existing[stanza.origin] if stanza.origin is not None else pkg.add("access")
        _apply_stanza(section, pkg, stanza, index, errors)
        sections.append(section)
    return Applied(dict(errors), sections, {"global": glob.section, "network": net.section,
                                            "config": conf.section})


# ---------------------------------------------------------------------------
# Errors at their fields


def _message(error: ValidationError) -> str:
    """The message at the field: ``SOURCE is missing: ...``, ``OPEN_PORTS:
    'x' is not ...``; one that names its options itself stays as it is."""
    if not error.option or error.message[:1].isupper():
        return error.message
    if error.message.startswith(_VERB_START):
        return f"{error.option} {error.message}"
    return f"{error.option}: {error.message}"


def _extra_row(extras: Sequence[Extra], option: str) -> int | None:
    for row, extra in enumerate(extras):
        if extra.name == option:
            return row
    return None


def _access_field(index: int, stanza: Stanza, option: str) -> str | None:
    prefix = f"access-{index}-"
    if option in ACCESS_NAMES:
        return prefix + option
    row = _extra_row(stanza.extras, option)
    if row is not None:
        return f"{prefix}extra-{row}-value"
    if option in ("KEY", "KEY_BASE64"):
        return prefix + "key"
    if option in ("HMAC_KEY", "HMAC_KEY_BASE64"):
        return prefix + "hmac_key"
    return None


def _other_field(kind: str, form: Form, option: str) -> str | None:
    if kind == "global":
        return "uci_enabled" if option == "uci_enabled" else None
    if kind == "network":
        return "network" if option == "network" else None
    if option in CONFIG_NAMES:
        return field_id(f"config.{option}")
    row = _extra_row(form.config_extras, option)
    return None if row is None else f"config-extra-{row}-value"


def place_errors(pkg: UciPackage, form: Form, applied: Applied,
                 problems: Sequence[ValidationError]) -> tuple[dict[str, list[str]], list[str]]:
    """Put each problem at its field: (field id -> messages, the others).

    ``pkg`` is the package ``applied`` came from; ``applied.errors`` are
    included.
    """
    where: dict[str, tuple[str, int]] = {}
    for index, section in enumerate(applied.stanzas):
        where[section_ref(pkg, section)] = ("access", index)
    for kind, found in applied.sections.items():
        if found is not None:
            where.setdefault(section_ref(pkg, found), (kind, 0))
    at_fields: dict[str, list[str]] = defaultdict(list)
    for fid, messages in applied.errors.items():
        at_fields[fid].extend(messages)
    others: list[str] = []
    for problem in problems:
        kind, index = where.get(problem.section_ref, ("", 0))
        target: str | None = None
        if kind == "access":
            target = _access_field(index, form.stanzas[index], problem.option)
        elif kind:
            target = _other_field(kind, form, problem.option)
        if target is None:
            others.append(str(problem))
        else:
            at_fields[target].append(_message(problem))
    return dict(at_fields), others
