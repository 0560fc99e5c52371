# A Python SPA client encoder: what the fwknop 2.x client puts on the wire.
#
# Purpose: build genuine SPA packets for tests, the demo and the benchmark,
# without the C client. build_packet() mirrors the client's encoding order
# (spa-protocol.md 0, 1.1); encode_plaintext() and seal() expose the two
# halves so tests can craft malformed but correctly encrypted packets.
#
# Strategy: plaintext fields joined with ':', inner digest appended, AES in
# the stanza's mode over an OpenSSL "Salted__" container, base64 without
# padding, the constant "U2FsdGVkX1" prefix cut off, then the HMAC over the
# prefixed text appended (3.2). Randomness (rand value, salt) comes from
# os.urandom unless the caller fixes it.
#
# Invariants: the encoder validates only what would make an undecodable
# container (digest type, key length, salt size); message content is encoded
# as given, so negative tests can send what a patched client would.

from __future__ import annotations

import os

from .b64 import b64_encode_nopad
from .crypto import DIGEST_TYPES, MAX_KEY_LEN, StanzaKeys, digest_b64, encrypt_blob
from .packet import SALTED_PREFIX

__all__ = ["build_packet", "encode_plaintext", "seal"]

# 1.3: the client re-applies the timeout at encode time and swaps the type
# between its timeout and non-timeout variant (fko_set_spa_client_timeout).
_WITH_TIMEOUT = {1: 3, 2: 4, 5: 6}
_WITHOUT_TIMEOUT = {v: k for k, v in _WITH_TIMEOUT.items()}


def _random_digits() -> str:
    # 1.1: the client sends exactly 16 decimal digits. os.urandom rather than
    # `secrets` keeps `random` & co. out of the daemon's import; bytes >= 250
    # are dropped so that every digit is equally likely.
    digits = ""
    while len(digits) < 16:
        digits += "".join(str(b % 10) for b in os.urandom(24) if b < 250)
    return digits[:16]


def encode_plaintext(message: str, *, timestamp: int, msg_type: int = 1,
                     username: str = "root", rand: str | None = None,
                     nat_access: str | None = None, server_auth: str | None = None,
                     client_timeout: int = 0, version: str = "3.0.0") -> str:
    """The encoded message before the digest (fields 1..9 of spa-protocol.md 1.1).

    Fields are taken as given (no type remapping, no validation); free-text
    fields are base64-encoded without padding.
    """
    fields = [
        _random_digits() if rand is None else rand,
        b64_encode_nopad(username.encode("utf-8", "surrogateescape")),
        str(timestamp),
        version,
        str(msg_type),
        b64_encode_nopad(message.encode("utf-8", "surrogateescape")),
    ]
    # 1.1: ":NAT" if set, ":server auth" if set, ":timeout" if > 0 and not a command.
    if nat_access is not None:
        fields.append(b64_encode_nopad(nat_access.encode("utf-8", "surrogateescape")))
    if server_auth is not None:
        fields.append(b64_encode_nopad(server_auth.encode("utf-8", "surrogateescape")))
    if client_timeout > 0 and msg_type != 0:
        fields.append(str(client_timeout))
    return ":".join(fields)


def seal(encoded: str, keys: StanzaKeys, *, digest_type: str = "sha256",
         salt: bytes | None = None, add_digest: bool = True) -> str:
    """Append the inner digest, encrypt and authenticate: the wire string.

    Args:
        encoded: the plaintext fields (``encode_plaintext``), or any text.
        keys: the client's keys (``keys.mode``, ``keys.hmac_type`` apply).
        digest_type: inner digest name (``DIGEST_TYPES``).
        salt: 8 bytes, random when None.
        add_digest: False encrypts ``encoded`` as is (for crafted plaintexts).

    Raises:
        ValueError: unknown digest type, passphrase over 32 bytes (the client
            refuses it: "Invalid key length"), bad salt size.
    """
    if digest_type not in DIGEST_TYPES:
        raise ValueError(f"unsupported digest type {digest_type!r}")
    if keys.passphrase_len > MAX_KEY_LEN:
        raise ValueError("Invalid key length")
    plaintext = encoded.encode("utf-8", "surrogateescape")
    if add_digest:
        plaintext += b":" + digest_b64(digest_type, plaintext).encode("ascii")
    blob = encrypt_blob(plaintext, keys, os.urandom(8) if salt is None else salt)
    full = b64_encode_nopad(blob)  # starts with "U2FsdGVkX1" (2.6)
    wire = full[len(SALTED_PREFIX):]
    if keys.hmac_key is not None:
        # 3.2: the MAC covers the prefixed text, the wire omits the prefix.
        wire += keys.hmac_b64(full.encode("ascii"))
    return wire


def build_packet(message: str, keys: StanzaKeys, *, timestamp: int, msg_type: int = 1,
                 username: str = "root", rand: str | None = None, salt: bytes | None = None,
                 nat_access: str | None = None, server_auth: str | None = None,
                 client_timeout: int = 0, digest_type: str = "sha256",
                 version: str = "3.0.0") -> str:
    """Build the wire string the fwknop client would send (spa-protocol.md 0).

    Like the client, a positive ``client_timeout`` turns type 1/2/5 into
    3/4/6 and a zero timeout turns 3/4/6 back into 1/2/5; a command message
    (type 0) never carries a timeout. Unlike the client, the message content
    is not validated (use it to build packets the server must refuse), and
    legacy mode with HMAC is allowed (the server accepts it, 2.4).

    Args:
        message: e.g. ``"1.2.3.4,tcp/22"`` or, for type 0, ``"1.2.3.4,uptime"``.
        keys: the keys and mode to encrypt and authenticate with.
        timestamp: the unix time to embed (no clock is read here).
        msg_type: 0..6 (1.3).
        username: the username field.
        rand: 16 digits, random when None.
        salt: 8 bytes, random when None.
        nat_access: ``"host,port"`` for NAT types.
        server_auth: optional server-auth text (1.9).
        client_timeout: seconds; 0 = none.
        digest_type: inner digest (``DIGEST_TYPES``).
        version: the protocol version field (the 2.6 client sends ``3.0.0``).

    Returns:
        The ASCII wire string (no ``=``, no prefix, HMAC appended if keyed).

    Raises:
        ValueError: as ``seal``.
    """
    if msg_type == 0:
        client_timeout = 0
    elif client_timeout > 0:
        msg_type = _WITH_TIMEOUT.get(msg_type, msg_type)
    else:
        msg_type = _WITHOUT_TIMEOUT.get(msg_type, msg_type)
    encoded = encode_plaintext(
        message, timestamp=timestamp, msg_type=msg_type, username=username, rand=rand,
        nat_access=nat_access, server_auth=server_auth, client_timeout=client_timeout,
        version=version,
    )
    return seal(encoded, keys, digest_type=digest_type, salt=salt)
