# Parsing is total: any byte content of access.conf or fwknopd.conf gives
# either a result (with warnings) or a ConfigError, never another exception.
# And no key, however it is written into either file, reaches a message.

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwknopd_uci.config import (
    ACCESS_VARIABLES,
    SERVER_VARIABLES,
    AccessStanza,
    ConfigError,
    ServerConfig,
    dump_config,
    parse_access_conf,
    parse_address_list,
    parse_port_list,
    parse_server_conf,
)

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# Values that reach the interesting branches: lists, numbers, dates, keys.
VALUES = st.one_of(
    st.sampled_from(["ANY", "10.0.0.0/8", "0.0.0.0/0", "tcp/22, udp/53", "tcp/123453", "Y", "N",
                     "__CHANGEME__", "dGVzdA==", "legacy", "sha512", "3/10/01", "-1",
                     "99999999999", "$FWKNOP_RUN_DIR/x", "NONE", "10.0.0.1 22", "root"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/"), max_size=40),
)
NAMES = st.sampled_from([*ACCESS_VARIABLES, *SERVER_VARIABLES, "%include_keys", "SOURCE:",
                         "KEY:", "#", "unknown"])
LINE = st.one_of(
    st.tuples(NAMES, st.sampled_from([" ", "\t", ": ", ""]), VALUES,
              st.sampled_from(["", ";", " ; c", "\r"])).map(lambda t: "".join(t)),
    st.text(max_size=60),
)
STRUCTURED = st.lists(LINE, max_size=25).map(lambda lines: "\n".join(lines).encode(
    "utf-8", "surrogatepass"))
RAW = st.binary(max_size=2000)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    # Relative %include paths resolve against the working directory: keep
    # them inside the test's own folder.
    before = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


def check_access(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        stanzas, warnings = parse_access_conf(path)
    except ConfigError as exc:
        assert str(exc)
        return
    assert stanzas and all(s.keys is not None and s.keys.key for s in stanzas)
    assert all(isinstance(w, str) for w in warnings)


def check_server(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        config, _ = parse_server_conf(path)
    except ConfigError as exc:
        assert str(exc)
        return
    assert set(config.values) <= set(SERVER_VARIABLES)
    assert dump_config(config, [])


@FUZZ
@given(data=st.one_of(RAW, STRUCTURED))
def test_config_fuzz_access_conf_is_total(workdir: Path, data: bytes) -> None:
    check_access(workdir / "access.conf", b"SOURCE ANY\n" + data)
    check_access(workdir / "access.conf", data)


@FUZZ
@given(data=st.one_of(RAW, STRUCTURED))
def test_config_fuzz_fwknopd_conf_is_total(workdir: Path, data: bytes) -> None:
    check_server(workdir / "fwknopd.conf", data)


@FUZZ
@given(data=STRUCTURED)
def test_config_fuzz_stanzas_dump_without_keys(workdir: Path, data: bytes) -> None:
    path = workdir / "access.conf"
    path.write_bytes(b"SOURCE ANY\nKEY s3cr3t-fuzz-key\n" + data)
    server = workdir / "fwknopd.conf"
    server.write_bytes(b"# defaults\n")
    try:
        stanzas, _ = parse_access_conf(path)
    except ConfigError:
        return
    text = dump_config(parse_server_conf(server)[0], stanzas)
    assert "s3cr3t-fuzz-key" not in text


# -- keys never reach a message -------------------------------------------------

SECRET_NAMES = ["KEY", "KEY_BASE64", "HMAC_KEY", "HMAC_KEY_BASE64", "GPG_DECRYPT_PW",
                "GPG_SIGNING_PW"]
NAME_LIKE = re.compile(r"[A-Z][A-Z0-9_]{0,47}")
NUMBER = re.compile(r"[+-]?[0-9]+")


def known_harmless(key: str) -> bool:
    """What the rule lets a message quote: a name-like word, a plain number,
    an address list, an existing path. Key material is none of these."""
    if NAME_LIKE.fullmatch(key.rstrip(":")) or NUMBER.fullmatch(key) or os.path.lexists(key):
        return True
    try:
        parse_address_list(key)
    except ValueError:
        return False
    return True


# fwknop --key-gen style base64, and typed passphrases (no whitespace or ';',
# which would split them into several words or end the value).
KEYS = st.one_of(
    st.binary(min_size=12, max_size=64).map(lambda b: base64.b64encode(b).decode()),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                   exclude_characters=";"), min_size=10, max_size=40),
).filter(lambda key: not known_harmless(key))

# Odd ways to write a key line (and two lines run together); {v} is a secret
# variable name, {k} the key. A dump must hide the key in all of these too.
MALFORMED = [
    "{v}={k}", "{v}:{k}", "{v}:={k}", "{v}= {k}", "{v} = {k}", '{v}="{k}"', "{k}", "  {k}",
    "\t{k}", "{k} {v}", "{k} # the key", "{k};", "{v}\n{k}", '"{v} {k}"', "'{v}' {k}",
    "export {v}={k}", "{v}{k}", "{v}_{k}", "{v}\t{k} extra words", "{v} {k}", "{v}: {k}",
    "{v}:: {k}", "SOURCE ANY {v} {k}", "SOURCE ANY, {v} {k}", "FW_ACCESS_TIMEOUT 30 {v} {k}",
    "OPEN_PORTS tcp/22 {v} {k}", "REQUIRE_USERNAME bob {v} {k}", "ENCRYPTION_MODE cbc {v} {k}",
    "HMAC_DIGEST_TYPE sha256 {v} {k}", "ACCESS_EXPIRE 01/01/2030 {v} {k}",
    "MAX_SPA_PACKET_AGE 60 {v} {k}", "PCAP_FILTER udp port 62201 {v} {k}",
    "PCAP_INTF ${k}", "%include_keys {k}", "%include {k}", "%include_folder {k}",
]
# A key written as the value of every other variable: no message may quote
# it (a dump may: then it is that variable's value).
MISPLACED = [f"{name} {{k}}" for name in (*ACCESS_VARIABLES, *SERVER_VARIABLES)]

# Where the line goes in access.conf: inside a stanza, before the first
# SOURCE, in an included file, in a %include_keys file, after a BOM.
ACCESS_LAYOUTS = {
    "stanza": ("SOURCE ANY\nKEY_BASE64 dGVzdA==\n{line}\n", None),
    "before": ("{line}\nSOURCE ANY\nKEY k\n", None),
    "include": ("SOURCE ANY\nKEY k\n%include inc.conf\n", "SOURCE 10.0.0.1\nKEY j\n{line}\n"),
    "keys": ("SOURCE ANY\n%include_keys inc.conf\n", "{line}\n"),
    "bom": ("\ufeffSOURCE 10.0.0.0/8\nKEY k\n{line}\nREQUIRE_SOURCE_ADDRESS Y\n", None),
}


def collect(parse: Callable[[], tuple[object, list[str]]]) -> tuple[object | None, list[str]]:
    """The result (None on a ConfigError) and every text a caller could log."""
    try:
        result, warnings = parse()
    except ConfigError as exc:
        return None, [str(exc), exc.message, exc.variable or "", *exc.warnings]
    return result, list(warnings)


def assert_no_key(key: str, texts: list[str], workdir: Path) -> None:
    windows = {key[i:i + 8] for i in range(len(key) - 7)}
    for text in texts:
        text = text.replace(str(workdir), "<dir>")  # paths are not line text
        leaked = [w for w in windows if w in text]
        assert not leaked, (key, text)


@FUZZ
@given(key=KEYS, secret=st.sampled_from(SECRET_NAMES),
       template=st.one_of(st.sampled_from(MALFORMED), st.sampled_from(MISPLACED)),
       layout=st.sampled_from(sorted(ACCESS_LAYOUTS)))
def test_config_fuzz_keys_never_in_messages_or_dumps(workdir: Path, key: str, secret: str,
                                                     template: str, layout: str) -> None:
    line = template.replace("{v}", secret).replace("{k}", key)
    main, included = ACCESS_LAYOUTS[layout]
    access, server = workdir / "access.conf", workdir / "fwknopd.conf"
    access.write_text(main.replace("{line}", line))
    (workdir / "inc.conf").write_text((included or "# unused\n").replace("{line}", line))
    server.write_text(f"PCAP_INTF eth1\n{line}\nMAX_SPA_PACKET_AGE 60\n")
    for path in (access, server, workdir / "inc.conf"):
        path.chmod(0o600)

    config, texts = collect(lambda: parse_server_conf(server))
    assert_no_key(key, texts, workdir)
    stanzas, texts = collect(lambda: parse_access_conf(access))
    assert_no_key(key, texts, workdir)

    if template in MALFORMED:
        if not isinstance(config, ServerConfig):  # refused: dump the stanzas with defaults
            (workdir / "empty.conf").write_text("# defaults\n")
            config = parse_server_conf(workdir / "empty.conf")[0]
        kept = [s for s in stanzas if isinstance(s, AccessStanza)] \
            if isinstance(stanzas, list) else []
        assert_no_key(key, [dump_config(config, kept)], workdir)


@FUZZ
@given(text=st.text(max_size=80))
def test_config_fuzz_list_errors_never_quote_their_input(text: str) -> None:
    """lists.py names a bad entry by its position: a key pasted into SOURCE
    or OPEN_PORTS is not repeated in the error."""
    for parse in (parse_address_list, parse_port_list):
        try:
            parse(text)
        except ValueError as exc:
            message = str(exc)
            for item in text.split(","):
                item = item.strip()
                if len(item) >= 8:
                    assert item not in message, (item, message)
