# The UCI reader and writer: libuci's syntax and semantics, errors with
# lines, @type[n] addressing, comment-keeping edits, atomic save, the real
# OpenWrt config files and property tests (parse is total; what dump writes
# parses back to the same package).

from __future__ import annotations

import copy
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Self

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwknopd_uci.openwrt import uci
from fwknopd_uci.openwrt.uci import (
    UciError,
    UciPackage,
    UciSection,
    dump,
    export,
    load,
    parse,
    save,
    uci_bool,
)

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "data" / "uci"
# ../shared beside the repository: real files of another project, read only.
REAL = TESTS.parent.parent / "shared" / "vectors" / "uci-configs"
REAL_FILES = sorted(path for path in REAL.iterdir() if path.name != "README.md") \
    if REAL.is_dir() else []

Shape = list[tuple[str, str | None, list[tuple[str, str | list[str]]]]]


def shape(package: UciPackage) -> Shape:
    """Everything a package means, order included (== on dicts ignores it)."""
    return [(s.type, s.name, [(k, list(v) if isinstance(v, list) else v)
                              for k, v in s.options.items()]) for s in package.sections]


def one(text: str) -> UciSection:
    package = parse(text)
    assert len(package.sections) == 1
    return package.sections[0]


def error(text: str) -> UciError:
    with pytest.raises(UciError) as caught:
        parse(text, "/etc/config/test")
    return caught.value


# ---------------------------------------------------------------------------
# Syntax


def test_uci_syntax_fixture_parses_to_its_json() -> None:
    """Every rule of the syntax at once, against a hand-written expectation."""
    package = load(FIXTURES / "syntax.uci")
    expected = json.loads((FIXTURES / "syntax.json").read_text())
    assert [[t, n, [[k, v] for k, v in o]] for t, n, o in shape(package)] == expected
    assert dump(package) == (FIXTURES / "syntax.uci").read_text()
    assert shape(parse(dump(package, canonical=True))) == shape(package)


@pytest.mark.parametrize(("value", "expected"), [
    ("bare", "bare"),
    ("'two words'", "two words"),
    ('"two words"', "two words"),
    ("'a'\"b\"c", "abc"),
    ("'it'\\''s'", "it's"),
    ("'no \\escape'", "no \\escape"),
    ('"q\\"uote"', 'q"uote'),
    ('"back\\\\slash"', "back\\slash"),
    ('"\\n is n"', "n is n"),
    ("a\\ b", "a b"),
    ("'a # b'", "a # b"),
    ("a#b", "a"),
    ("'v'#c", "v"),
    ("'a;b'", "a;b"),
    ("'multi\nline'", "multi\nline"),
    ('"multi\nline"', "multi\nline"),
    ("con\\\ntinued", "continued"),
    ('"con\\\ntinued"', "continued"),
    ("'keeps\\\nnewline'", "keeps\\\nnewline"),
    ("'caf\u00e9'", "caf\u00e9"),
    ("'\u00a0'", "\u00a0"),
    ("''\"\"'x'", "x"),
])
def test_uci_syntax_token_forms(value: str, expected: str) -> None:
    assert one(f"config t\n\toption v {value}\n").options == {"v": expected}


def test_uci_syntax_comments_blank_lines_and_indentation() -> None:
    text = ("# top\n\n   # indented\nconfig t # after the header\n\n\t#\toption x '1'\n"
            "  option a 'b'   # after a value\n\t\t\n")
    assert shape(parse(text)) == [("t", None, [("a", "b")])]


def test_uci_syntax_semicolons_separate_statements() -> None:
    section = one("config t 'n'; option a 1;option b 2 ; list c 3;; list c 4;\n")
    assert (section.name, section.options) == ("n", {"a": "1", "b": "2", "c": ["3", "4"]})


def test_uci_syntax_abbreviated_commands_and_package() -> None:
    package = parse("package fwknopd\nc t\no a 1\nl b 2\np other-name\n")
    assert shape(package) == [("t", None, [("a", "1"), ("b", ["2"])])]


def test_uci_syntax_crlf_file() -> None:
    text = "config t 'n'\r\n\toption a 'b'\r\n\tlist c d\r\n"
    package = parse(text)
    assert shape(package) == [("t", "n", [("a", "b"), ("c", ["d"])])]
    assert dump(package) == text


def test_uci_syntax_file_without_final_newline() -> None:
    package = parse("config t\n\toption a b")
    assert shape(package) == [("t", None, [("a", "b")])]
    package.sections[0].set("c", "d")
    assert shape(parse(dump(package))) == [("t", None, [("a", "b"), ("c", "d")])]


def test_uci_syntax_section_types_and_names() -> None:
    """Types take printable ASCII (libuci's rule); names only [A-Za-z0-9_]."""
    package = parse("config my-type.v2@x\nconfig 'a#b' 'Name_1'\nconfig t ''\n")
    assert [(s.type, s.name) for s in package.sections] == [
        ("my-type.v2@x", None), ("a#b", "Name_1"), ("t", None)]
    assert shape(parse(dump(package, canonical=True))) == shape(package)


def test_uci_semantics_empty_option_is_ignored_empty_list_item_kept() -> None:
    section = one("config t\n\toption a ''\n\toption b\n\toption c 1\n\toption c ''\n"
                  "\tlist d ''\n\tlist e\n")
    assert section.options == {"c": "1", "d": [""], "e": [""]}


def test_uci_semantics_repeated_option_replaces_and_moves_to_the_end() -> None:
    section = one("config t\n\toption a 1\n\toption b 2\n\toption a 3\n\toption b 2\n")
    assert list(section.options.items()) == [("b", "2"), ("a", "3")]


def test_uci_semantics_list_after_option_and_option_after_list() -> None:
    """libuci turns an option into a list [old, new]; an option replaces a list."""
    section = one("config t\n\toption a 1\n\toption z 0\n\tlist a 2\n\tlist b 1\n"
                  "\tlist b 2\n\toption b 3\n")
    assert list(section.options.items()) == [("z", "0"), ("a", ["1", "2"]), ("b", "3")]


def test_uci_semantics_reopened_named_section_continues_it() -> None:
    package = parse("config t 'n'\n\toption a 1\nconfig u\nconfig t 'n'\n\toption b 2\n"
                    "\toption a 3\n")
    assert shape(package) == [("t", "n", [("b", "2"), ("a", "3")]), ("u", None, [])]
    package.sections[1].set("x", "y")  # force a rebuild: the section is written once
    rebuilt = dump(package)
    assert rebuilt.count("config t") == 1
    assert shape(parse(rebuilt)) == shape(package)


# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(("text", "line", "words"), [
    ("config t\n\toption a 'open\n\n", 2, "unterminated '"),
    ('config t\n\n\toption a "open\n\\"\n', 3, 'unterminated "'),
    ("# c\noption a b\n", 2, "before the first config"),
    ("list a b\n", 1, "before the first config"),
    ("config t\n\toption a-b c\n", 2, "invalid option name 'a-b'"),
    ("config t\n\tlist 'a b' c\n", 2, "invalid list name"),
    ("config t 'a-b'\n", 1, "invalid section name"),
    ("config 'a b'\n", 1, "invalid section type"),
    ("config\n", 1, "config without a section type"),
    ("config ''\n", 1, "config without a section type"),
    ("config t n extra\n", 1, "too many arguments to config"),
    ("config t\n\toption a b c\n", 2, "too many arguments to option a"),
    ("config t\n\toption\n", 2, "option without a name"),
    ("config t\n\tvalue a b\n", 2, "invalid command 'value'"),
    ("config t\n\t'option' a b\n", 2, "unquoted"),
    ("config t\n\toption a b;oops\n", 2, "invalid command 'oops'"),
    ("config t 'n'\nconfig u 'n'\n", 2, "cannot reopen"),
    ("package\n", 1, "package without a name"),
    ("package a.b\n", 1, "invalid package name"),
    ("config t\n\toption a 'b\0'\n", 2, "NUL"),
    ("config t\n\toption a \\\nb c\n", 3, "too many arguments"),
])
def test_uci_errors_name_file_line_and_problem(text: str, line: int, words: str) -> None:
    err = error(text)
    assert (err.path, err.line) == ("/etc/config/test", line)
    assert words in err.message
    assert str(err) == f"/etc/config/test:{line}: {err.message}"


def test_uci_errors_never_show_values() -> None:
    err = error("config t\n\toption KEY secretvalue secondpart\n")
    assert "secret" not in str(err) and "second" not in str(err)


def test_uci_error_str_without_parts() -> None:
    assert str(UciError("m")) == "m"
    assert str(UciError("m", line=3)) == "line 3: m"
    assert str(UciError("m", "f")) == "f: m"


def test_uci_load_missing_file_and_size_bound(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UciError) as caught:
        load(tmp_path / "absent")
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    big = tmp_path / "big"
    big.write_text("config t\n" + "# x\n" * 10)
    monkeypatch.setattr(uci, "MAX_FILE_BYTES", 20)
    with pytest.raises(UciError, match="larger than"):
        load(big)


def test_uci_load_keeps_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1"
    path.write_bytes(b"config t\n\toption a 'caf\xe9'\n")
    package = load(path)
    package.sections[0].set("b", "x")
    save(path, package)
    assert b"'caf\xe9'" in path.read_bytes()
    assert load(path).sections[0].options["a"] == "caf\udce9"


# ---------------------------------------------------------------------------
# The package and section API


FWKNOPD = ("config global\n\nconfig access\n\toption SOURCE 'ANY'\n\n"
           "config access 'second'\n\toption SOURCE '10.0.0.0/8'\n\n"
           "config access\n\toption SOURCE '192.168.0.0/16'\n\nconfig config\n")


@pytest.mark.parametrize(("ref", "source"), [
    ("@access[0]", "ANY"), ("@access[1]", "10.0.0.0/8"), ("@access[2]", "192.168.0.0/16"),
    ("@access[-1]", "192.168.0.0/16"), ("@access[-3]", "ANY"), ("second", "10.0.0.0/8"),
])
def test_uci_find_by_name_and_by_type_index(ref: str, source: str) -> None:
    assert parse(FWKNOPD).find(ref).get("SOURCE") == source


@pytest.mark.parametrize("ref", ["@access[3]", "@access[-4]", "@nothing[0]", "missing",
                                 "@access", "@access[x]", "@[0]", ""])
def test_uci_find_unknown_raises_key_error(ref: str) -> None:
    with pytest.raises(KeyError):
        parse(FWKNOPD).find(ref)


def test_uci_sections_of_and_anonymous_names() -> None:
    package = parse(FWKNOPD)
    assert [s.name for s in package.sections_of("access")] == [None, "second", None]
    assert package.sections_of("global")[0].line == 1
    assert package.find("@access[-1]").line == 9
    assert package.find("second").line_of("SOURCE") == 7
    assert package.find("second").line_of("absent") is None


def test_uci_section_get_get_list_is_list() -> None:
    section = one("config t\n\toption a 1\n\tlist b x\n\tlist b y\n")
    assert (section.get("a"), section.get("b"), section.get("c"), section.get("c", "d")) == \
        ("1", "y", None, "d")
    assert (section.get_list("a"), section.get_list("b"), section.get_list("c")) == \
        (["1"], ["x", "y"], [])
    assert (section.is_list("a"), section.is_list("b"), section.is_list("c")) == \
        (False, True, False)
    section.get_list("b").append("z")
    assert section.options["b"] == ["x", "y"]


def test_uci_section_set_and_delete() -> None:
    section = one("config t\n\toption a 1\n\toption b 2\n")
    section.set("a", "changed")
    section.set("c", ["x", ""])
    assert list(section.options.items()) == [("a", "changed"), ("b", "2"), ("c", ["x", ""])]
    section.set("b", "")  # as `uci set`: an empty value deletes
    section.set("c", [])
    section.delete("a")
    section.delete("never")
    assert section.options == {}
    with pytest.raises(UciError, match="invalid option name"):
        section.set("bad-name", "x")
    with pytest.raises(UciError, match="NUL"):
        section.set("a", "x\0y")
    with pytest.raises(TypeError):
        section.set("a", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        section.set("a", ["x", 5])  # type: ignore[list-item]


def test_uci_package_add_and_remove() -> None:
    package = parse(FWKNOPD)
    added = package.add("access", "third")
    assert package.find("third") is added and package.find("@access[-1]") is added
    with pytest.raises(UciError, match="already exists"):
        package.add("access", "second")
    with pytest.raises(UciError, match="invalid section name"):
        package.add("access", "bad name")
    with pytest.raises(UciError, match="invalid section type"):
        package.add("bad type")
    twin = UciSection("access", None, {"SOURCE": "ANY"})
    assert twin == package.find("@access[0]")
    with pytest.raises(ValueError):
        package.remove(twin)  # equal, but not the same object
    package.remove(package.find("@access[0]"))
    assert package.find("@access[0]").name == "second"


def test_uci_repr_hides_key_values() -> None:
    section = one("config access\n\toption KEY 'k1'\n\toption hmac_key_base64 'k2'\n"
                  "\toption SOURCE 'ANY'\n")
    assert "k1" not in repr(section) and "k2" not in repr(section)
    assert "ANY" in repr(section)


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("on", True), ("true", True), ("yes", True), ("enabled", True),
    ("0", False), ("off", False), ("false", False), ("no", False), ("disabled", False),
    ("TRUE", None), ("Y", None), (" 1", None), ("", None), ("2", None), (None, None),
])
def test_uci_bool_is_get_bool(value: str | None, expected: bool | None) -> None:
    assert uci_bool(value) is expected


# ---------------------------------------------------------------------------
# Writing


def test_uci_dump_new_package_is_canonical() -> None:
    package = UciPackage()
    package.add("global").set("uci_enabled", "1")
    access = package.add("access", "laptop")
    access.set("SOURCE", "ANY")
    access.set("KEY", "it's\nmulti")
    access.set("OPEN_PORTS", ["tcp/22", "udp/53"])
    package.add("odd'type")
    assert dump(package) == (
        "config global\n\toption uci_enabled '1'\n\n"
        "config access 'laptop'\n\toption SOURCE 'ANY'\n\toption KEY 'it'\\''s\nmulti'\n"
        "\tlist OPEN_PORTS 'tcp/22'\n\tlist OPEN_PORTS 'udp/53'\n\n"
        "config 'odd'\\''type'\n")
    assert shape(parse(dump(package))) == shape(package)


def test_uci_dump_unchanged_text_is_returned_as_is() -> None:
    text = "\n# odd spacing kept\nconfig   t   \"n\"\n   option a   \"b\"  # c\n\n\n"
    assert dump(parse(text)) == text


def test_uci_dump_edits_keep_comments_golden() -> None:
    """The edits a settings page makes, against a reviewed expected file."""
    package = load(FIXTURES / "edit-before.uci")
    package.find("@global[0]").set("uci_enabled", "1")
    package.find("@network[-1]").set("network", "wan")
    package.find("laptop").set("OPEN_PORTS", "tcp/22, tcp/443")
    package.remove(package.find("phone"))
    config = package.find("@config[0]")
    config.delete("ENABLE_IPT_FORWARDING")
    config.set("EXTRA", ["one", "2", "three"])
    config.set("PCAP_INTF", "eth1")
    tablet = package.add("access", "tablet")
    tablet.set("SOURCE", "10.0.0.0/8")
    tablet.set("KEY", "it's")
    assert dump(package) == (FIXTURES / "edit-after.uci").read_text()


def test_uci_dump_only_the_changed_line_changes() -> None:
    before = (FIXTURES / "edit-before.uci").read_text()
    package = parse(before)
    package.find("phone").set("OPEN_PORTS", "udp/51820")
    after = dump(package)
    assert after == before.replace("'udp/1194'", "'udp/51820'")


def test_uci_dump_deleted_option_takes_its_own_comment_only() -> None:
    text = ("config t\n\t# about the old example\n#\toption old 'x'\n\n"
            "\t# about a\n\toption a '1'\n\n\t# about b\n\toption b '2'\n")
    package = parse(text)
    package.sections[0].delete("a")
    assert dump(package) == ("config t\n\t# about the old example\n#\toption old 'x'\n\n"
                             "\t# about b\n\toption b '2'\n")


def test_uci_dump_removed_last_section_leaves_no_blank_tail() -> None:
    package = parse("# file header\n\nconfig a\n\toption x '1'\n\n# about b\nconfig b\n")
    package.remove(package.sections[1])
    assert dump(package) == "# file header\n\nconfig a\n\toption x '1'\n"
    package.remove(package.sections[0])
    assert dump(package) == "# file header\n"


def test_uci_dump_added_section_after_file_without_final_blank() -> None:
    package = parse("config a\n\toption x '1'")
    package.add("b").set("y", "2")
    assert dump(package) == "config a\n\toption x '1'\n\nconfig b\n\toption y '2'\n"


def test_uci_dump_reordered_and_renamed_sections() -> None:
    package = parse("config a 'one'\n\toption x '1'\n\nconfig b\n\toption y '2'\n")
    package.sections.reverse()
    package.sections[1].name = "renamed"
    package.sections[0].type = "c"
    assert dump(package) == "config c\n\toption y '2'\n\nconfig a 'renamed'\n\toption x '1'\n"


def test_uci_dump_list_items_keep_their_lines() -> None:
    text = "config t\n\tlist l 'a' # one\n\tlist l  \"b\"\n\tlist l c\n"
    package = parse(text)
    package.sections[0].set("l", ["a", "B", "c", "d"])
    assert dump(package) == ("config t\n\tlist l 'a' # one\n\tlist l 'B'\n\tlist l c\n"
                             "\tlist l 'd'\n")
    package.sections[0].set("l", ["a"])
    assert dump(package) == "config t\n\tlist l 'a' # one\n"


@pytest.mark.parametrize(("text", "expected"), [
    ("config t; option a 1; option b 2\n", "config t; option a 1; option b 2\n\toption c '3'\n"),
    ("config t\n\toption a b\\", "config t\n\toption a b\\\n\n\toption c '3'\n"),
    ("config t\n\toption a b \\\n", "config t\n\toption a b \\\n\n\toption c '3'\n"),
    ("config t # c;\n\toption a 1 # x;", "config t # c;\n\toption a 1 # x;\n\toption c '3'\n"),
])
def test_uci_dump_appends_safely_after_odd_line_ends(text: str, expected: str) -> None:
    """After `;`, a comment ending in `;`, or a backslash join at the end of
    the file, a new statement still starts a statement of its own."""
    package = parse(text)
    package.sections[0].set("c", "3")
    assert dump(package) == expected
    assert shape(parse(expected)) == shape(package)


def test_uci_dump_deep_copy_keeps_the_layout() -> None:
    package = parse("# h\n\nconfig t\n\t# about a\n\toption a 1\n")
    twin = copy.deepcopy(package)
    twin.sections[0].set("a", "2")
    assert dump(twin) == "# h\n\nconfig t\n\t# about a\n\toption a '2'\n"
    assert dump(package) == "# h\n\nconfig t\n\t# about a\n\toption a 1\n"


def test_uci_dump_changed_option_keeps_its_trailing_comment() -> None:
    package = parse("config t\n\toption a \"1\"   # the answer\n")
    package.sections[0].set("a", "42")
    assert dump(package) == "config t\n\toption a '42'   # the answer\n"


@pytest.mark.parametrize("mutate", [
    lambda p: p.sections[0].options.__setitem__("a", "x\0"),
    lambda p: p.sections[0].options.__setitem__("a", ["x\0"]),
    lambda p: p.sections[0].options.__setitem__("bad-name", "x"),
    lambda p: p.sections[0].options.__setitem__("a", 5),
    lambda p: setattr(p.sections[0], "type", "a b"),
    lambda p: setattr(p.sections[0], "name", "a-b"),
    lambda p: p.sections.append(UciSection("t", "n")),
])
def test_uci_dump_refuses_what_libuci_cannot_hold(mutate: Callable[[UciPackage], object]) -> None:
    package = parse("config t 'n'\n\toption a 'b'\n")
    mutate(package)
    with pytest.raises(UciError):
        dump(package)


def test_uci_dump_empty_option_value_is_not_written() -> None:
    package = parse("config t\n\toption a 'b'\n")
    package.sections[0].options["a"] = ""
    assert shape(parse(dump(package))) == [("t", None, [])]


def test_uci_export_is_uci_export_style() -> None:
    package = parse("# c\nconfig global\n\toption a \"1\"\nconfig access 'x'\n\tlist l 2\n")
    assert export(package, "fwknopd") == ("package fwknopd\n\nconfig global\n\toption a '1'\n"
                                          "\nconfig access 'x'\n\tlist l '2'\n\n")
    assert shape(parse(export(package, "fwknopd"))) == shape(package)
    with pytest.raises(UciError):
        export(package, "bad name")


# ---------------------------------------------------------------------------
# save()


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_uci_save_keeps_mode_and_owner(tmp_path: Path) -> None:
    path = tmp_path / "fwknopd"
    path.write_text("config global\n")
    path.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(path, 12345, 23456)
    package = load(path)
    package.sections[0].set("uci_enabled", "1")
    save(path, package)
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (12345, 23456)
    assert path.read_text() == "config global\n\toption uci_enabled '1'\n"
    assert leftovers(tmp_path) == ["fwknopd"]


@pytest.mark.parametrize(("option", "mode"), [("KEY", 0o600), ("hmac_key", 0o600),
                                              ("SOURCE", 0o644)])
def test_uci_save_new_file_mode(tmp_path: Path, option: str, mode: int) -> None:
    package = UciPackage()
    package.add("access").set(option, "x")
    old = os.umask(0o077)
    try:
        save(tmp_path / "new", package)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == mode
    assert shape(load(tmp_path / "new")) == shape(package)


def test_uci_save_follows_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("config a\n")
    (tmp_path / "link").symlink_to("real")
    package = load(tmp_path / "link")
    package.add("b")
    save(tmp_path / "link", package)
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "real").read_text() == "config a\n\nconfig b\n"


@pytest.mark.parametrize("failing", ["replace", "fsync", "fchmod"])
def test_uci_save_failure_leaves_the_old_file_and_no_temp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    path = tmp_path / "fwknopd"
    path.write_text("config global\n")
    package = load(path)
    package.sections[0].set("uci_enabled", "1")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(UciError, match="No space left") as caught:
        save(path, package)
    monkeypatch.undo()
    assert isinstance(caught.value.__cause__, OSError)
    assert path.read_text() == "config global\n"
    assert leftovers(tmp_path) == ["fwknopd"]


def test_uci_save_failure_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure in the middle of the write (a full disk) leaves nothing."""
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fd: int) -> None:
            self.stream = real_fdopen(fd, "wb")

        def __enter__(self) -> Self:
            return self

        def __exit__(self, *exc: object) -> None:
            self.stream.close()

        def write(self, data: bytes) -> int:
            self.stream.write(data[:3])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Full(fd))
    with pytest.raises(UciError):
        save(tmp_path / "new", parse("config t\n"))
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_uci_save_into_read_only_directory(tmp_path: Path) -> None:
    path = tmp_path / "fwknopd"
    path.write_text("config global\n")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(UciError):
            save(path, parse("config other\n"))
        assert leftovers(tmp_path) == ["fwknopd"]
    finally:
        tmp_path.chmod(0o755)
    assert path.read_text() == "config global\n"


def test_uci_save_refuses_nul_and_unencodable_before_touching_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "fwknopd"
    path.write_text("config global\n")
    package = load(path)
    package.sections[0].options["a"] = "x\0y"
    with pytest.raises(UciError, match="NUL"):
        save(path, package)
    package.sections[0].options["a"] = "\ud800"
    with pytest.raises(UciError, match="UTF-8"):
        save(path, package)
    assert path.read_text() == "config global\n"
    assert leftovers(tmp_path) == ["fwknopd"]


def test_uci_save_onto_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(UciError, match="not a regular file"):
        save(tmp_path / "dir", parse("config t\n"))


# ---------------------------------------------------------------------------
# The real OpenWrt config files (read from the shared folder, never copied)


@pytest.fixture(params=[str(path) for path in REAL_FILES] or ["absent"],
                ids=[path.name for path in REAL_FILES] or ["absent"])
def real(request: pytest.FixtureRequest) -> Path:
    if not REAL_FILES:
        pytest.skip(f"the real OpenWrt UCI files are not at {REAL}")
    return Path(request.param)


def test_uci_real_files_round_trip(real: Path) -> None:
    text = real.read_text()
    package = load(real)
    assert package.sections
    assert dump(package) == text
    assert shape(parse(dump(package))) == shape(package)
    assert shape(parse(dump(package, canonical=True))) == shape(package)
    assert shape(parse(export(package, "x"))) == shape(package)


def test_uci_real_files_survive_edits(real: Path) -> None:
    """Change, add and delete in every section; the meaning survives."""
    package = load(real)
    for index, section in enumerate(package.sections):
        names = list(section.options)
        if names:
            section.set(names[0], f"changed '{index}'\n")
        if len(names) > 1:
            section.delete(names[-1])
        section.set("fwknopd_uci_new", ["a", ""])
    package.add("extra", "fwknopd_uci_extra").set("x", "y")
    assert shape(parse(dump(package))) == shape(package)


def test_uci_real_files_count_canonical_style() -> None:
    """A file whose every statement is canonical comes back byte-identical
    from dump(canonical=True); count them (12 of the 16 at the time of
    writing: acme, ddns, coova-chilli and openvpn use other quoting or
    indentation)."""
    if not REAL_FILES:
        pytest.skip(f"the real OpenWrt UCI files are not at {REAL}")
    import re
    statement = re.compile(r"(config [^\s'\"\\#;]+( '[A-Za-z0-9_]+')?"
                           r"|\t(option|list) [A-Za-z0-9_]+ '[^']*')")
    identical = canonical_style = 0
    for path in REAL_FILES:
        text = path.read_text()
        lines = [line for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
        is_canonical = all(statement.fullmatch(line) for line in lines)
        same = dump(load(path), canonical=True) == text
        assert same == is_canonical, path.name
        identical += same
        canonical_style += is_canonical
    assert identical == canonical_style >= 12


def test_uci_real_fwknopd_default_schema() -> None:
    path = REAL / "net_fwknop_files_fwknopd"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    package = load(path)
    assert [s.type for s in package.sections] == ["global", "network", "access", "config"]
    assert all(s.name is None for s in package.sections)
    assert package.find("@global[0]").options == {}
    assert package.find("@access[-1]").options == {
        "SOURCE": "ANY", "HMAC_KEY": "__CHANGEME__", "KEY": "__CHANGEME__"}
    assert package.find("@config[0]").get("ENABLE_NAT_DNS") == "Y"


# ---------------------------------------------------------------------------
# Properties

PROPERTY = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

NAMES = st.sampled_from(["a", "b", "KEY", "SOURCE", "x_1", "n"])
TYPES = st.sampled_from(["t", "access", "global", "my-type"])
VALUE_CHARS = st.characters(codec="utf-8", exclude_characters="\0")
VALUES = st.one_of(st.sampled_from(["", "1", "it's", "a b", "x\ny", "\\", "#", ";", '"']),
                   st.text(VALUE_CHARS, max_size=12))


@st.composite
def quoted(draw: st.DrawFn, value: str) -> str:
    """Write ``value`` as one UCI argument, in a randomly chosen style."""
    style = draw(st.sampled_from(["single", "double", "bare", "mixed"]))
    if style == "double":
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style == "bare" and value and all(c.isalnum() or c in "_./-" for c in value):
        return value
    if style == "mixed" and len(value) > 1:
        return "'" + value[:1].replace("'", "'\\''") + "'" + \
            '"' + value[1:].replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "'" + value.replace("'", "'\\''") + "'"


@st.composite
def statements(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["config"] * 3 + ["option"] * 4 + ["list"] * 3 + [
        "comment", "comment", "blank", "blank", "package", "junk"]))
    if kind == "config":
        name = draw(st.one_of(st.none(), NAMES))
        return f"config {draw(TYPES)}" + ("" if name is None else f" {draw(quoted(name))}")
    if kind in ("option", "list"):
        indent = draw(st.sampled_from(["\t", "", "  "]))
        return f"{indent}{kind} {draw(NAMES)} {draw(quoted(draw(VALUES)))}"
    if kind == "comment":
        return draw(st.sampled_from(["# c", "\t# option a 'b'", "#", "  # x \\"]))
    if kind == "blank":
        return draw(st.sampled_from(["", "  ", "\t"]))
    if kind == "package":
        return "package p"
    if draw(st.integers(0, 3)):
        return draw(st.sampled_from(["", ";", "c t", "o a", "l a", "config t 'a'", "'"]))
    return draw(st.text(st.characters(codec="utf-8"), max_size=8))


ENDS = st.sampled_from(["\n"] * 12 + [";", " ; ", "\r\n", " # t\n", "\\\n", ""])
# Mostly valid files (a section first, rare junk), so that edits have something to edit.
UCI_TEXT = st.tuples(st.sampled_from(["config t\n", "config access 'n'\n", "# c\n\nconfig t\n",
                                      "\nconfig global\n# c\n", ""]),
                     st.lists(st.tuples(statements(), ENDS), max_size=14)).map(
    lambda parts: parts[0] + "".join(a + b for a, b in parts[1]))
ANY_TEXT = st.one_of(UCI_TEXT, st.text(st.characters(codec="utf-8"), max_size=60),
                     st.text(st.sampled_from("co \t\n'\"\\#;ab"), max_size=40))


@PROPERTY
@given(ANY_TEXT)
def test_uci_property_parse_is_total_and_dump_gives_the_text_back(text: str) -> None:
    try:
        package = parse(text)
    except UciError as err:
        assert err.line is not None and 1 <= err.line <= text.count("\n") + 1
        return
    assert dump(package) == text
    assert shape(parse(dump(package, canonical=True))) == shape(package)


def apply_edits(data: st.DataObject, package: UciPackage) -> None:
    for _ in range(data.draw(st.integers(0, 6))):
        action = data.draw(st.sampled_from(["set", "list", "delete", "add", "remove",
                                            "rename", "retype", "reverse", "reorder"]))
        sections = package.sections
        if action == "add":
            name = data.draw(st.one_of(st.none(), NAMES))
            if name is None or all(s.name != name for s in sections):
                package.add(data.draw(TYPES), name)
            continue
        if not sections:
            continue
        section = data.draw(st.sampled_from(sections))
        if action == "set":
            section.set(data.draw(NAMES), data.draw(VALUES))
        elif action == "list":
            section.set(data.draw(NAMES), data.draw(st.lists(VALUES, max_size=3)))
        elif action == "delete" and section.options:
            section.delete(data.draw(st.sampled_from(list(section.options))))
        elif action == "remove":
            package.remove(section)
        elif action == "rename":
            name = data.draw(st.one_of(st.none(), NAMES))
            if name is None or all(s.name != name for s in sections):
                section.name = name
        elif action == "retype":
            section.type = data.draw(TYPES)
        elif action == "reverse":
            sections.reverse()
        elif action == "reorder":
            section.options = dict(reversed(section.options.items()))


@PROPERTY
@given(UCI_TEXT, st.data())
def test_uci_property_edited_packages_read_back_the_same(text: str,
                                                         data: st.DataObject) -> None:
    try:
        package = parse(text)
    except UciError:
        return
    apply_edits(data, package)
    written = dump(package)
    assert shape(parse(written)) == shape(package), written
    assert shape(parse(dump(package, canonical=True))) == shape(package)


@st.composite
def packages(draw: st.DrawFn) -> UciPackage:
    package = UciPackage()
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.one_of(st.none(), NAMES))
        if name is not None and any(s.name == name for s in package.sections):
            name = None
        section = package.add(draw(st.one_of(TYPES, st.text(st.characters(
            min_codepoint=33, max_codepoint=126), min_size=1, max_size=5))), name)
        for option in draw(st.lists(NAMES, max_size=4, unique=True)):
            if draw(st.booleans()):
                section.set(option, draw(st.lists(VALUES, min_size=1, max_size=3)))
            else:
                section.set(option, draw(VALUES))
    return package


@PROPERTY
@given(packages())
def test_uci_property_generated_packages_dump_and_parse_back(package: UciPackage) -> None:
    assert shape(parse(dump(package))) == shape(package)
    assert shape(parse(export(package, "p"))) == shape(package)
