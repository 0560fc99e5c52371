# CSRF tokens (web/csrf.py): bound to the session, from a private per-install
# secret that is made on first use and replaced when it is not private.

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fwknopd_uci.web.csrf import SECRET_BYTES, CsrfError, CsrfTokens

SID = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"


def test_web_csrf_token_is_bound_to_the_session(tmp_path: Path) -> None:
    tokens = CsrfTokens(tmp_path / "secret")
    token = tokens.token(SID)
    assert len(token) == 64 and token != tokens.token(OTHER)
    assert SID not in token
    assert tokens.check(SID, token)
    assert not tokens.check(OTHER, token)
    for bad in ("", token[:-1], token + "0", token.upper(), None, 12, "é" * 64):
        assert not tokens.check(SID, bad)


def test_web_csrf_secret_is_made_private_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "fwknopd-uci-web.secret"
    token = CsrfTokens(path).token(SID)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_bytes()) == SECRET_BYTES
    assert CsrfTokens(path).token(SID) == token  # another process, same secret
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


@pytest.mark.parametrize(("content", "mode"), [(b"x" * SECRET_BYTES, 0o644),
                                                (b"short", 0o600), (b"", 0o600)])
def test_web_csrf_secret_that_is_not_private_is_replaced(tmp_path: Path, content: bytes,
                                                         mode: int) -> None:
    path = tmp_path / "secret"
    path.write_bytes(content)
    path.chmod(mode)
    tokens = CsrfTokens(path)
    tokens.token(SID)
    assert path.read_bytes() != content
    assert path.stat().st_mode & 0o777 == 0o600
    assert tokens.check(SID, CsrfTokens(path).token(SID))


def test_web_csrf_secret_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"y" * SECRET_BYTES)
    target.chmod(0o600)
    link = tmp_path / "secret"
    link.symlink_to(target)
    with pytest.raises(CsrfError):
        CsrfTokens(link).token(SID)
    assert target.read_bytes() == b"y" * SECRET_BYTES


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_web_csrf_unwritable_secret_is_an_error(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir(mode=0o500)
    with pytest.raises(CsrfError):
        CsrfTokens(directory / "secret").token(SID)
