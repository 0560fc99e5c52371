# `fwknopd --key-gen`: random keys in the format fwknop prints
# (spa-protocol.md 12): two lines, base64 WITH its padding (the one place
# fwknop keeps it), from the kernel's CSPRNG.

from __future__ import annotations

import base64
import os
from pathlib import Path

__all__ = ["DEFAULT_KEY_LEN", "HMAC_KEY_LEN_BY_TYPE", "generate_keys", "keygen_text",
           "write_key_file"]

DEFAULT_KEY_LEN = 32
# Default HMAC key length per HMAC type, as the reference's --key-gen. The
# SHA3 types have no default there; we use their digest's block-size class
# (64 bytes, the sha256 default) rather than failing as 2.6.10 does.
HMAC_KEY_LEN_BY_TYPE = {"md5": 16, "sha1": 20, "sha256": 64, "sha384": 128, "sha512": 128,
                        "sha3_256": 64, "sha3_512": 128}
MAX_KEY_LEN = 32      # libfko: an encryption passphrase is at most 32 bytes
MAX_HMAC_KEY_LEN = 128  # the client's cap (the server would take 136)


def generate_keys(key_len: int = DEFAULT_KEY_LEN, hmac_key_len: int | None = None,
                  hmac_type: str = "sha256") -> tuple[str, str]:
    """Return (KEY_BASE64, HMAC_KEY_BASE64) values, padded base64."""
    if hmac_type not in HMAC_KEY_LEN_BY_TYPE:
        raise ValueError(f"invalid HMAC digest type {hmac_type!r}; valid: "
                         + ", ".join(HMAC_KEY_LEN_BY_TYPE))
    if hmac_key_len is None:
        hmac_key_len = HMAC_KEY_LEN_BY_TYPE[hmac_type]
    if not 1 <= key_len <= MAX_KEY_LEN:
        raise ValueError(f"invalid key length {key_len}, must be in [1-{MAX_KEY_LEN}]")
    if not 1 <= hmac_key_len <= MAX_HMAC_KEY_LEN:
        raise ValueError(f"invalid hmac key length {hmac_key_len}, must be in "
                         f"[1-{MAX_HMAC_KEY_LEN}]")
    return (base64.b64encode(os.urandom(key_len)).decode(),
            base64.b64encode(os.urandom(hmac_key_len)).decode())


def keygen_text(key_b64: str, hmac_b64: str) -> str:
    return f"KEY_BASE64: {key_b64}\nHMAC_KEY_BASE64: {hmac_b64}\n"


def write_key_file(path: Path, text: str) -> None:
    """Write the key lines with mode 0600 (the C tool follows the umask)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
