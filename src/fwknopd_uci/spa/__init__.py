# The pure SPA protocol core of fwknopd-uci (fwknop 2.x wire format).
#
# Bytes, keys and a clock-free decode in; a SpaMessage or a SpaRefused out.
# No sockets, logging, subprocesses, clocks or global state live here.
#
# Server pipeline, in fwknopd's order (spa-protocol.md 5.3, 6.3):
#   data, xff = unwrap_http(payload, allow_any_ua)   # only if SPA over HTTP
#   wire = prescreen(data)                           # every packet, cheap
#   digest = replay_digest(wire)                     # replay cache lookup
#   for each matching stanza:
#       if is_gpg_length(wire) and not stanza.cmd_exec: skip ("No stanza ...")
#       msg = open_packet(wire, stanza.keys)         # HMAC, decrypt, decode
# Module map: errors (SpaRefused), b64 (fwknop's base64), crypto (keys, KDF,
# AES, HMAC, digests), message (plaintext decode), packet (the server
# entry points), encode (a client encoder for tests and tools).

from __future__ import annotations

from .b64 import b64_decode_lenient, b64_encode_nopad
from .crypto import DIGEST_TYPES, ENCRYPTION_MODES, HMAC_TYPES, StanzaKeys
from .encode import build_packet, encode_plaintext, seal
from .errors import REFUSAL_MESSAGES, SpaRefused
from .message import MSG_TYPE_NAMES, SpaMessage, decode_plaintext, is_valid_ipv4_addr
from .packet import (
    extract_wire,
    is_gpg_length,
    open_packet,
    prescreen,
    replay_digest,
    unwrap_http,
)

__all__ = [
    "DIGEST_TYPES",
    "ENCRYPTION_MODES",
    "HMAC_TYPES",
    "MSG_TYPE_NAMES",
    "REFUSAL_MESSAGES",
    "SpaMessage",
    "SpaRefused",
    "StanzaKeys",
    "b64_decode_lenient",
    "b64_encode_nopad",
    "build_packet",
    "decode_plaintext",
    "encode_plaintext",
    "extract_wire",
    "is_gpg_length",
    "is_valid_ipv4_addr",
    "open_packet",
    "prescreen",
    "replay_digest",
    "seal",
    "unwrap_http",
]
