# Parsing is total: any byte content of access.conf or fwknopd.conf gives
# either a result (with warnings) or a ConfigError, never another exception.

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwknopd_uci.config import (
    ACCESS_VARIABLES,
    SERVER_VARIABLES,
    ConfigError,
    dump_config,
    parse_access_conf,
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
