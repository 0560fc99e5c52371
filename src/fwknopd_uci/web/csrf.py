# CSRF tokens bound to the LuCI session.
#
# Strategy: the token of a session is HMAC-SHA256(secret, "csrf:" + sid), hex,
# with a per-install secret of 32 random bytes in a 0600 file
# (/etc/fwknopd-uci-web.secret). Nothing is stored per session: a token is
# valid exactly as long as its session, and a new secret (delete the file)
# invalidates every page that is open. The session cookie is HttpOnly and
# SameSite=Strict on top of this.
#
# Invariants: tokens are compared in constant time; a secret file that
# others could read, or that is not 32 bytes, is replaced by a new secret
# rather than used.

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Final

__all__ = ["SECRET_BYTES", "CsrfError", "CsrfTokens"]

log = logging.getLogger(__name__)

SECRET_BYTES: Final = 32


class CsrfError(Exception):
    """The secret file cannot be read or written."""


class CsrfTokens:
    """Tokens for sessions, from the secret in ``path`` (made on first use).

    Args:
        path: the secret file.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._secret: bytes | None = None

    def token(self, sid: str) -> str:
        """The token forms of session ``sid`` carry.

        Raises:
            CsrfError: the secret cannot be read or made.
        """
        digest = hmac.new(self._key(), b"csrf:" + sid.encode("ascii", "replace"),
                          hashlib.sha256)
        return digest.hexdigest()

    def check(self, sid: str, token: object) -> bool:
        """True if ``token`` is the token of session ``sid``.

        Raises:
            CsrfError: the secret cannot be read or made.
        """
        if not isinstance(token, str) or not token.isascii():
            return False
        return hmac.compare_digest(self.token(sid).encode(), token.encode())

    def _key(self) -> bytes:
        if self._secret is None:
            self._secret = self._load()
        return self._secret

    def _load(self) -> bytes:
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return self._create()
        except OSError as exc:
            raise CsrfError(f"cannot read {self._path}: {exc.strerror or exc}") from exc
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            data = handle.read(SECRET_BYTES + 1)
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077 \
                or len(data) != SECRET_BYTES:
            log.warning("replacing %s: it was not a private %d-byte file", self._path,
                        SECRET_BYTES)
            return self._create(replace=True)
        return data

    def _create(self, *, replace: bool = False) -> bytes:
        secret = secrets.token_bytes(SECRET_BYTES)
        directory = self._path.parent
        temp = directory / f".{self._path.name}.{os.getpid()}.new"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                with os.fdopen(fd, "wb") as handle:
                    os.fchmod(handle.fileno(), 0o600)
                    handle.write(secret)
                    handle.flush()
                    os.fsync(handle.fileno())
                if replace:
                    os.replace(temp, self._path)
                else:
                    # Two first requests at once: the first link wins, the
                    # other one reads the winner's secret.
                    try:
                        os.link(temp, self._path)
                    except FileExistsError:
                        return self._load()
            finally:
                temp.unlink(missing_ok=True)
        except OSError as exc:
            raise CsrfError(f"cannot write {self._path}: {exc.strerror or exc}") from exc
        return secret
