# Keys, KDF, cipher modes and HMAC of the SPA core (spa-protocol.md 2, 3).

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import hmac
import pickle
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fwknopd_uci.spa import ENCRYPTION_MODES, HMAC_TYPES, StanzaKeys
from fwknopd_uci.spa.crypto import decrypt_blob, derive_key_iv, encrypt_blob

SECRET_KEY = b"super secret key material 123456"
SECRET_HMAC = b"hmac secret material"


def test_spa_crypto_hmac_types_table() -> None:
    """3.1: the b64-nopad MAC lengths per HMAC_DIGEST_TYPE."""
    assert dict(HMAC_TYPES) == {"md5": 22, "sha1": 27, "sha256": 43, "sha384": 64,
                                "sha512": 86, "sha3_256": 43, "sha3_512": 86}
    assert ENCRYPTION_MODES == ("cbc", "ecb", "cfb", "ofb", "ctr", "legacy")


def test_spa_crypto_repr_hides_keys() -> None:
    keys = StanzaKeys(SECRET_KEY, SECRET_HMAC, "SHA512", "CBC")
    text = repr(keys) + str(keys)
    assert "secret" not in text
    assert "hmac_type='sha512'" in text and "mode='cbc'" in text


def test_spa_crypto_keys_copy_pickle_replace() -> None:
    keys = StanzaKeys(SECRET_KEY, SECRET_HMAC, "sha1", "legacy")
    for clone in (copy.copy(keys), copy.deepcopy(keys), pickle.loads(pickle.dumps(keys))):
        assert clone == keys
        assert clone.hmac_b64(b"x") == keys.hmac_b64(b"x")
    changed = dataclasses.replace(keys, mode="cbc")
    assert (changed.mode, changed.passphrase_len) == ("cbc", len(SECRET_KEY))


def test_spa_crypto_keys_normalise_names() -> None:
    keys = StanzaKeys(b"k", b"h", hmac_type="SHA3_256", mode="Legacy")
    assert (keys.hmac_type, keys.mode) == ("sha3_256", "legacy")
    assert keys == StanzaKeys(b"k", b"h", "sha3_256", "legacy")
    assert hash(keys) == hash(StanzaKeys(b"k", b"h", "sha3_256", "legacy"))


@pytest.mark.parametrize(("hmac_type", "mode"), [("sha3-256", "cbc"), ("sha256", "pcbc"),
                                                 ("sha256", "asymmetric"), ("none", "cbc")])
def test_spa_crypto_keys_reject_unknown_names(hmac_type: str, mode: str) -> None:
    with pytest.raises(ValueError):
        StanzaKeys(b"k", None, hmac_type, mode)


@pytest.mark.parametrize(("key", "expected"), [
    (b"fwknoptest", b"fwknoptest000000"),
    (b"1234567890123456", b"1234567890123456"),
    (b"1234567890123456blah", b"1234567890123456"),
    (b"", b"0" * 16),
])
def test_spa_crypto_legacy_key_adjustment(key: bytes, expected: bytes) -> None:
    """2.4: legacy mode pads with '0' / truncates the passphrase to 16 bytes."""
    legacy = StanzaKeys(key, None, mode="legacy")
    cbc = StanzaKeys(expected, None, mode="cbc")
    salt = b"saltsalt"
    blob = encrypt_blob(b"x" * 40, legacy, salt)
    assert blob == encrypt_blob(b"x" * 40, cbc, salt)
    assert legacy.passphrase_len == 16


def test_spa_crypto_kdf_matches_evp_bytes_to_key() -> None:
    """2.2: key = D1 || D2, iv = D3 with Dn = MD5(Dn-1 || pw || salt)."""
    pw, salt = b"fwknoptest", bytes(range(8))
    d1 = hashlib.md5(pw + salt).digest()
    d2 = hashlib.md5(d1 + pw + salt).digest()
    d3 = hashlib.md5(d2 + pw + salt).digest()
    assert derive_key_iv(pw, salt) == (d1 + d2, d3)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_spa_crypto_kdf_matches_openssl_cli() -> None:
    """Cross-check with `openssl enc -P` (prints key/iv, encrypts nothing)."""
    out = subprocess.run(
        ["openssl", "enc", "-aes-256-cbc", "-md", "md5", "-pass", "pass:fwknoptest",
         "-S", "0102030405060708", "-P"],
        capture_output=True, text=True, timeout=10, check=True, stdin=subprocess.DEVNULL,
    ).stdout
    values = {name.strip(): value.strip() for name, _, value in
              (line.partition("=") for line in out.splitlines())}
    key, iv = derive_key_iv(b"fwknoptest", bytes.fromhex("0102030405060708"))
    assert values["key"].lower() == key.hex()
    assert values["iv"].lower() == iv.hex()


@pytest.mark.parametrize("mode", ENCRYPTION_MODES)
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 100])
def test_spa_crypto_modes_round_trip(mode: str, size: int) -> None:
    keys = StanzaKeys(b"fwknoptest", None, mode=mode)
    plaintext = bytes(range(size))
    blob = encrypt_blob(plaintext, keys, b"12345678")
    assert blob[:16] == b"Salted__12345678"
    assert len(blob) % 16 == 0  # 2.7: padded in every mode
    assert decrypt_blob(blob, keys) == plaintext


def test_spa_crypto_modes_differ() -> None:
    """2.7: the mode is not signalled; each gives different ciphertext."""
    blobs = {encrypt_blob(b"a" * 48, StanzaKeys(b"k", None, mode=m), b"saltsalt")
             for m in ("cbc", "ecb", "cfb", "ofb", "ctr")}
    assert len(blobs) == 5


def test_spa_crypto_lenient_padding_keeps_bad_bytes() -> None:
    """2.5: malformed padding is left in place, not an error."""
    keys = StanzaKeys(b"k", None, mode="ecb")
    key, _ = derive_key_iv(b"k", b"saltsalt")
    body = b"A" * 15 + b"\x05"  # claims 5 bytes of padding, has 1
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    blob = b"Salted__saltsalt" + enc.update(body) + enc.finalize()
    assert decrypt_blob(blob, keys) == body
    zero = b"B" * 15 + b"\x00"  # p = 0: valid, removes nothing
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    assert decrypt_blob(b"Salted__saltsalt" + enc.update(zero) + enc.finalize(), keys) == zero


@pytest.mark.parametrize("hmac_type", sorted(HMAC_TYPES))
def test_spa_crypto_hmac_matches_stdlib(hmac_type: str) -> None:
    """3.1: plain RFC 2104 HMAC, as Python's hmac for all seven types."""
    keys = StanzaKeys(b"k", SECRET_HMAC * 10, hmac_type)  # 200 bytes: hashed first
    data = b"U2FsdGVkX1" + b"A" * 150
    expected = hmac.new(SECRET_HMAC * 10, data, getattr(hashlib, hmac_type)).digest()
    assert keys.hmac_b64(data) == base64.b64encode(expected).decode().rstrip("=")
    assert len(keys.hmac_b64(data)) == HMAC_TYPES[hmac_type] == keys.hmac_b64_len
    assert keys.hmac_b64(data) == keys.hmac_b64(data)  # the cached state is reusable


def test_spa_crypto_no_hmac_key() -> None:
    keys = StanzaKeys(b"k", None)
    assert keys.hmac_b64_len == 0
    with pytest.raises(ValueError):
        keys.hmac_b64(b"data")
