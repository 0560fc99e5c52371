# Cryptographic primitives of the SPA wire format (spa-protocol.md 2, 3).
#
# Purpose: the per-stanza key object (StanzaKeys), fwknop's key/IV
# derivation (OpenSSL EVP_BytesToKey with MD5, one round), AES-256 in the
# six symmetric modes fwknopd supports, the HMAC over the base64 ciphertext
# and the inner digests of the plaintext.
#
# Strategy: the HMAC, the inner digests and the MD5 KDF come from the
# standard library (hmac and hashlib, OpenSSL-backed through _hashlib); only
# AES comes from the `cryptography` package. Per-stanza work that does not
# depend on the packet (the legacy key adjustment, the keyed HMAC state) is
# done once per stanza and reused by copying, which halves the HMAC cost on
# the hot path.
#
# Why nothing here imports a crypto module at import time: the daemon's
# idle RSS is the budget on the router (issue target: 20 MB), and both are
# big. Measured with the running daemon (x86_64, Python 3.11, cryptography
# 50, scripts/measure_rss.sh):
# - `cryptography` costs about 8 MB RSS (its Rust binding carries its own
#   OpenSSL, 6.3 MB of mapped code, plus cffi and 26 Python modules). It is
#   imported in _cipher() only, so it loads on the first packet that passed
#   the HMAC check (or reached decryption in a stanza without HMAC): a flood
#   of garbage never loads it. That first knock pays the import once, about
#   7 ms with the files in the page cache.
# - hashlib and hmac load libcrypto through _hashlib: about 3.5 MB RSS. They
#   are imported inside the functions that hash (_new_hmac, derive_key_iv,
#   digest_b64; packet.py and message.py import hmac for compare_digest
#   after those ran), so they load with the first packet that passes the
#   pre-screen (its replay digest), about 3 ms once, and never while idle.
# The price on the hot path is about 1.5 us per packet (the stdlib HMAC's
# Python-level copy, the function-level imports); the knock target is 5 ms.
#
# Invariants: nothing here logs or formats key bytes; StanzaKeys' repr shows
# only the HMAC type and the mode. Functions here raise only ValueError for
# impossible arguments; refusals are the caller's (packet.py) business.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from .b64 import b64_encode_nopad

if TYPE_CHECKING:
    import hmac

    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    # The mode families cryptography's Cipher types as non-AEAD.
    _PlainMode = modes.ModeWithInitializationVector | modes.ModeWithNonce | modes.ECB

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
    # Derived once per stanza (the HMAC state on first use); excluded from
    # repr/eq/hash.
    _passphrase: bytes = field(init=False, repr=False, compare=False)
    _hmac_proto: hmac.HMAC | None = field(init=False, repr=False, compare=False)

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
        for name, value in (("hmac_type", hmac_type), ("mode", mode), ("key", key),
                            ("hmac_key", hmac_key), ("_passphrase", passphrase),
                            ("_hmac_proto", None)):
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
        if self.hmac_key is None:
            raise ValueError("stanza has no HMAC key")
        proto = self._hmac_proto
        if proto is None:
            proto = _new_hmac(self.hmac_key, self.hmac_type)
            object.__setattr__(self, "_hmac_proto", proto)
        mac = proto.copy()
        mac.update(data)
        return b64_encode_nopad(mac.digest())


def _new_hmac(key: bytes, hmac_type: str) -> hmac.HMAC:
    # Not at import: hmac loads libcrypto (RSS budget, see the header).
    import hmac

    # 3.1: plain RFC 2104 HMAC. A digest name (not a constructor) makes hmac
    # use OpenSSL's HMAC, whose block sizes (136 and 72 bytes for SHA3-256
    # and SHA3-512) are libfko's.
    return hmac.new(key, digestmod=hmac_type)


def derive_key_iv(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """OpenSSL ``EVP_BytesToKey(MD5, 1 round)``: 32-byte AES key and 16-byte IV (2.2)."""
    # Not at import: hashlib loads libcrypto (RSS budget, see the header).
    import hashlib

    d1 = hashlib.md5(passphrase + salt).digest()
    d2 = hashlib.md5(d1 + passphrase + salt).digest()
    d3 = hashlib.md5(d2 + passphrase + salt).digest()
    return d1 + d2, d3


def _cipher(mode: str, key: bytes, iv: bytes) -> Cipher[_PlainMode]:
    # The only place `cryptography` is imported: see the header (RSS budget).
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    # 2.7: every mode uses the same KDF; IV = D3 (unused by ECB). CTR counts
    # over the whole 16-byte block, which is cryptography's CTR.
    chosen: _PlainMode
    if mode in ("cbc", "legacy"):
        chosen = modes.CBC(iv)
    elif mode == "ctr":
        chosen = modes.CTR(iv)
    elif mode == "ecb":
        chosen = modes.ECB()
    else:
        try:
            from cryptography.hazmat.decrepit.ciphers import modes as decrepit
        except ImportError:  # cryptography < 43 still has CFB/OFB in the main module
            chosen = modes.CFB(iv) if mode == "cfb" else modes.OFB(iv)
        else:
            chosen = decrepit.CFB(iv) if mode == "cfb" else decrepit.OFB(iv)
    return Cipher(algorithms.AES(key), chosen)


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
    decryptor = _cipher(keys.mode, key, iv).decryptor()
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
    encryptor = _cipher(keys.mode, key, iv).encryptor()
    body = encryptor.update(plaintext + bytes((pad,)) * pad) + encryptor.finalize()
    return SALTED_MAGIC + salt + body


def digest_b64(name: str, data: bytes) -> str:
    """b64-nopad digest ``name`` (a ``DIGEST_TYPES`` key) of ``data`` (1.10, 6.2).

    Raises:
        ValueError: ``name`` is not a ``DIGEST_TYPES`` key.
    """
    if name not in DIGEST_TYPES:
        raise ValueError(f"unsupported digest type {name!r}")
    # Not at import: hashlib loads libcrypto (RSS budget, see the header).
    import hashlib

    # The named constructor (hashlib.sha256, ...) is faster than hashlib.new.
    return b64_encode_nopad(getattr(hashlib, name)(data).digest())


def digest_candidates(b64_length: int) -> tuple[str, ...]:
    """Inner digest types to try, in order, for a digest of this b64 length (1.10)."""
    return _DIGESTS_BY_LENGTH.get(b64_length, ())
