# Cryptographic primitives of the SPA wire format (spa-protocol.md 2, 3).
#
# Purpose: the per-stanza key object (StanzaKeys), fwknop's key/IV
# derivation (OpenSSL EVP_BytesToKey with MD5, one round), AES-256 in the
# six symmetric modes fwknopd supports, the HMAC over the base64 ciphertext
# and the inner digests of the plaintext.
#
# Strategy: AES and HMAC come from the `cryptography` package, the inner
# digests and the MD5 KDF from hashlib. Per-stanza work that does not depend
# on the packet (the legacy key adjustment, the keyed HMAC state) is done
# once in StanzaKeys.__post_init__ and reused by copying, which halves the
# HMAC cost on the hot path. CFB/OFB are imported lazily (they moved to
# cryptography.hazmat.decrepit) so the common CBC path never pays for them.
#
# Invariants: nothing here logs or formats key bytes; StanzaKeys' repr shows
# only the HMAC type and the mode. Functions here raise only ValueError for
# impossible arguments; refusals are the caller's (packet.py) business.

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .b64 import b64_encode_nopad

__all__ = [
    "DIGEST_TYPES",
    "ENCRYPTION_MODES",
    "HMAC_TYPES",
    "LEGACY_KEY_LEN",
    "MAX_HMAC_KEY_LEN",
    "MAX_KEY_LEN",
    "SALTED_MAGIC",
    "StanzaKeys",
    "decrypt_blob",
    "derive_key_iv",
    "digest_b64",
    "digest_candidates",
    "encrypt_blob",
]

#: Passphrases longer than this are refused by libfko at packet time (2.3,
#: RIJNDAEL_MAX_KEYSIZE).
MAX_KEY_LEN: Final = 32
#: HMAC keys longer than this are refused by libfko (3.1, MAX_DIGEST_BLOCK_LEN).
MAX_HMAC_KEY_LEN: Final = 136
#: "legacy" mode pads/truncates the passphrase to this length (2.4).
LEGACY_KEY_LEN: Final = 16
#: The OpenSSL container magic; its base64 starts with "U2FsdGVkX1" (2.6).
SALTED_MAGIC: Final = b"Salted__"

#: HMAC_DIGEST_TYPE name -> length of the b64-nopad MAC on the wire (3.1).
HMAC_TYPES: Final[Mapping[str, int]] = MappingProxyType({
    "md5": 22,
    "sha1": 27,
    "sha256": 43,
    "sha384": 64,
    "sha512": 86,
    "sha3_256": 43,
    "sha3_512": 86,
})

#: Inner digest name -> b64-nopad length (1.10); same names as the client's -m.
DIGEST_TYPES: Final[Mapping[str, int]] = HMAC_TYPES

#: ENCRYPTION_MODE values handled here (2.7; GPG "asymmetric" is not).
ENCRYPTION_MODES: Final = ("cbc", "ecb", "cfb", "ofb", "ctr", "legacy")

# 1.10: the server picks the inner digest by its b64 length; SHA3 shares the
# lengths of SHA256/SHA512 and is tried second.
_DIGESTS_BY_LENGTH: Final[Mapping[int, tuple[str, ...]]] = MappingProxyType({
    22: ("md5",),
    27: ("sha1",),
    43: ("sha256", "sha3_256"),
    64: ("sha384",),
    86: ("sha512", "sha3_512"),
})

_HMAC_ALGORITHMS: Final[Mapping[str, Callable[[], hashes.HashAlgorithm]]] = MappingProxyType({
    "md5": hashes.MD5,
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha3_256": hashes.SHA3_256,
    "sha3_512": hashes.SHA3_512,
})


class _HashObject(Protocol):
    def digest(self) -> bytes: ...


_DIGEST_FUNCS: Final[Mapping[str, Callable[[bytes], _HashObject]]] = MappingProxyType({
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
    "sha3_256": hashlib.sha3_256,
    "sha3_512": hashlib.sha3_512,
})


@dataclass(frozen=True)
class StanzaKeys:
    """The key material of one access stanza.

    Attributes:
        key: the ``KEY`` bytes or the decoded ``KEY_BASE64``, as configured.
            For ``mode="legacy"`` the 2.4 adjustment (truncate to 16 bytes,
            right-pad with ``'0'``) is applied internally; pass the raw value.
        hmac_key: ``HMAC_KEY`` bytes or decoded ``HMAC_KEY_BASE64``; ``None``
            for a stanza without HMAC.
        hmac_type: one of ``HMAC_TYPES`` (case-insensitive, stored lower-case).
        mode: one of ``ENCRYPTION_MODES`` (case-insensitive, stored lower-case).

    Raises:
        ValueError: unknown ``hmac_type`` or ``mode`` (a fatal config error in
            fwknopd, 3.5 / 2.7). Over-long keys are *not* refused here: like
            fwknopd, they make every packet fail at run time (2.3).
    """

    key: bytes = field(repr=False)
    hmac_key: bytes | None = field(repr=False)
    hmac_type: str = "sha256"
    mode: str = "cbc"
    # Derived once per stanza; excluded from repr/eq/hash.
    _passphrase: bytes = field(init=False, repr=False, compare=False)
    _hmac_proto: crypto_hmac.HMAC | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hmac_type = str(self.hmac_type).lower()
        mode = str(self.mode).lower()
        if hmac_type not in HMAC_TYPES:
            raise ValueError(f"unsupported HMAC type {self.hmac_type!r}")
        if mode not in ENCRYPTION_MODES:
            raise ValueError(f"unsupported encryption mode {self.mode!r}")
        key = bytes(self.key)
        hmac_key = None if self.hmac_key is None else bytes(self.hmac_key)
        if mode == "legacy":
            # 2.4: fwknopd truncates a legacy KEY to 16 bytes at load time and
            # libfko right-pads shorter ones with ASCII '0' before the KDF.
            passphrase = key[:LEGACY_KEY_LEN].ljust(LEGACY_KEY_LEN, b"0")
        else:
            passphrase = key
        proto = None
        if hmac_key is not None:
            proto = crypto_hmac.HMAC(hmac_key, _HMAC_ALGORITHMS[hmac_type]())
        for name, value in (("hmac_type", hmac_type), ("mode", mode), ("key", key),
                            ("hmac_key", hmac_key), ("_passphrase", passphrase),
                            ("_hmac_proto", proto)):
            object.__setattr__(self, name, value)

    def __reduce__(self) -> tuple[type[StanzaKeys], tuple[bytes, bytes | None, str, str]]:
        # The cached HMAC state cannot be pickled or deep-copied; rebuild it
        # from the four configured values instead.
        return (StanzaKeys, (self.key, self.hmac_key, self.hmac_type, self.mode))

    @property
    def hmac_b64_len(self) -> int:
        """Length of this stanza's HMAC on the wire (3.3), 0 without HMAC."""
        return 0 if self.hmac_key is None else HMAC_TYPES[self.hmac_type]

    @property
    def passphrase_len(self) -> int:
        """Length of the passphrase actually fed to the KDF (after 2.4)."""
        return len(self._passphrase)

    def hmac_b64(self, data: bytes) -> str:
        """b64-nopad HMAC of ``data`` with this stanza's key and type (3.1).

        Raises:
            ValueError: the stanza has no HMAC key.
        """
        if self._hmac_proto is None:
            raise ValueError("stanza has no HMAC key")
        mac = self._hmac_proto.copy()
        mac.update(data)
        return b64_encode_nopad(mac.finalize())


def derive_key_iv(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """OpenSSL ``EVP_BytesToKey(MD5, 1 round)``: 32-byte AES key and 16-byte IV (2.2)."""
    d1 = hashlib.md5(passphrase + salt).digest()
    d2 = hashlib.md5(d1 + passphrase + salt).digest()
    d3 = hashlib.md5(d2 + passphrase + salt).digest()
    return d1 + d2, d3


# The mode families cryptography's Cipher types as non-AEAD.
_PlainMode = modes.ModeWithInitializationVector | modes.ModeWithNonce | modes.ECB


def _cipher_mode(mode: str, iv: bytes) -> _PlainMode:
    # 2.7: every mode uses the same KDF; IV = D3 (unused by ECB). CTR counts
    # over the whole 16-byte block, which is cryptography's CTR.
    if mode in ("cbc", "legacy"):
        return modes.CBC(iv)
    if mode == "ctr":
        return modes.CTR(iv)
    if mode == "ecb":
        return modes.ECB()
    try:
        from cryptography.hazmat.decrepit.ciphers import modes as decrepit
    except ImportError:  # cryptography < 43 still has CFB/OFB in the main module
        return modes.CFB(iv) if mode == "cfb" else modes.OFB(iv)
    return decrepit.CFB(iv) if mode == "cfb" else decrepit.OFB(iv)


def _strip_pkcs7_lenient(data: bytes) -> bytes:
    # 2.5: remove the padding only if it is well formed; otherwise leave the
    # bytes in place (the printable/digest checks then fail). p = 0 is
    # treated as valid padding that removes nothing.
    if not data:
        return data
    pad = data[-1]
    if 0 < pad <= 16 and len(data) >= pad and data[-pad:] == bytes((pad,)) * pad:
        return data[:-pad]
    return data


def decrypt_blob(raw: bytes, keys: StanzaKeys) -> bytes:
    """Decrypt an OpenSSL-style ``Salted__`` blob and strip the padding leniently.

    Like libfko, bytes 0..7 are not checked to be ``Salted__`` (2.2) and bad
    padding is left in place (2.5).

    Args:
        raw: the decoded blob; its length must be a multiple of 16 (the
            caller checks, 2.8).
        keys: the stanza keys (the legacy-adjusted passphrase is used).
    """
    salt = raw[8:16]
    key, iv = derive_key_iv(keys._passphrase, salt)
    decryptor = Cipher(algorithms.AES(key), _cipher_mode(keys.mode, iv)).decryptor()
    plaintext = decryptor.update(raw[16:]) + decryptor.finalize()
    return _strip_pkcs7_lenient(plaintext)


def encrypt_blob(plaintext: bytes, keys: StanzaKeys, salt: bytes) -> bytes:
    """``Salted__`` + salt + AES-256(PKCS#7(plaintext)), as the client builds it (2.1).

    Raises:
        ValueError: the salt is not 8 bytes.
    """
    if len(salt) != 8:
        raise ValueError("salt must be 8 bytes")
    pad = 16 - len(plaintext) % 16  # 2.5: always 1..16 bytes, in every mode
    key, iv = derive_key_iv(keys._passphrase, salt)
    encryptor = Cipher(algorithms.AES(key), _cipher_mode(keys.mode, iv)).encryptor()
    body = encryptor.update(plaintext + bytes((pad,)) * pad) + encryptor.finalize()
    return SALTED_MAGIC + salt + body


def digest_b64(name: str, data: bytes) -> str:
    """b64-nopad inner digest ``name`` (a ``DIGEST_TYPES`` key) of ``data`` (1.10)."""
    return b64_encode_nopad(_DIGEST_FUNCS[name](data).digest())


def digest_candidates(b64_length: int) -> tuple[str, ...]:
    """Inner digest types to try, in order, for a digest of this b64 length (1.10)."""
    return _DIGESTS_BY_LENGTH.get(b64_length, ())
