# The single refusal exception of the SPA protocol core.
#
# Purpose: every reason a packet can be refused (pre-screen, HTTP unwrap,
# HMAC, decryption, plaintext decode) is reported as one exception type,
# SpaRefused, carrying a short stable code for programs and the C server's
# log wording for people (spa-protocol.md 6.3: fwknopd logs
# "Error creating fko context: <fko_errstr>").
#
# Strategy: codes are the libfko error names with the "FKO_ERROR_" /
# "FKO_ERROR_INVALID_DATA_" prefix removed (e.g. HMAC_COMPAREFAIL), plus a
# few PRESCREEN_* / HTTP_* codes for fwknopd's preprocess_spa_data() step.
# The default message for a code is the text libfko's fko_errstr() returns
# for it, so operators grepping fwknopd logs (fail2ban filters) find the same
# words.
#
# Invariants: a message never contains key material or decrypted data; it is
# built only from the fixed table below or from the caller's explicit text.

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["REFUSAL_MESSAGES", "SpaRefused"]

# libfko wraps every FKO_ERROR_INVALID_DATA_* code as "Args contain invalid
# data: <NAME>" (lib/fko_error.c); these are the ones this core can raise.
_INVALID_DATA_CODES: Final = (
    "DECODE_MSGLEN_VALIDFAIL",
    "DECODE_NON_ASCII",
    "DECODE_LT_MIN_FIELDS",
    "DECODE_WRONG_NUM_FIELDS",
    "DECODE_RAND_MISSING",
    "DECODE_USERNAME_MISSING",
    "DECODE_USERNAME_TOOBIG",
    "DECODE_USERNAME_DECODEFAIL",
    "DECODE_USERNAME_VALIDFAIL",
    "DECODE_TIMESTAMP_MISSING",
    "DECODE_TIMESTAMP_TOOBIG",
    "DECODE_TIMESTAMP_DECODEFAIL",
    "DECODE_VERSION_MISSING",
    "DECODE_VERSION_TOOBIG",
    "DECODE_MSGTYPE_MISSING",
    "DECODE_MSGTYPE_TOOBIG",
    "DECODE_MSGTYPE_DECODEFAIL",
    "DECODE_MESSAGE_MISSING",
    "DECODE_MESSAGE_TOOBIG",
    "DECODE_MESSAGE_DECODEFAIL",
    "DECODE_MESSAGE_VALIDFAIL",
    "DECODE_ACCESS_VALIDFAIL",
    "DECODE_NATACCESS_MISSING",
    "DECODE_NATACCESS_TOOBIG",
    "DECODE_NATACCESS_DECODEFAIL",
    "DECODE_NATACCESS_VALIDFAIL",
    "DECODE_SRVAUTH_MISSING",
    "DECODE_SRVAUTH_DECODEFAIL",
    "DECODE_EXTRA_TOOBIG",
    "DECODE_EXTRA_DECODEFAIL",
    "DECODE_TIMEOUT_MISSING",
    "DECODE_TIMEOUT_TOOBIG",
    "DECODE_TIMEOUT_VALIDFAIL",
    "DECODE_TIMEOUT_DECODEFAIL",
    "ENCODE_NOTBASE64",
    "ENCRYPT_CIPHERLEN_DECODEFAIL",
    "ENCRYPT_CIPHERLEN_VALIDFAIL",
    "ENCRYPT_TYPE_UNKNOWN",
    "FUNCS_NEW_MSGLEN_VALIDFAIL",
    "HMAC_MSGLEN_VALIDFAIL",
    "HMAC_ENCMSGLEN_VALIDFAIL",
    "HMAC_COMPAREFAIL",
)

_BAD_FORMAT: Final = "Data is not a valid SPA message format"  # SPA_MSG_BAD_DATA (4096)
_NOT_SPA: Final = "Data is not an SPA message"  # SPA_MSG_NOT_SPA_DATA (4098)

_MESSAGES: dict[str, str] = {
    code: f"Args contain invalid data: FKO_ERROR_INVALID_DATA_{code}"
    for code in _INVALID_DATA_CODES
}
_MESSAGES.update({
    # Plain libfko errors (lib/fko_error.c wording).
    "INVALID_KEY_LEN": "Invalid key length",
    "INVALID_HMAC_KEY_LEN": "Invalid HMAC key length",
    "INVALID_DIGEST_TYPE": "Invalid digest type",
    "DECRYPTION_SIZE": "Unexpected or invalid size for decrypted data",
    "DECRYPTION_FAILURE": "Decryption failed or decrypted data is invalid",
    "DIGEST_VERIFICATION_FAILED": "The computed digest did not match the digest in the spa data",
    # fwknopd preprocess_spa_data() (spa-protocol.md 5.3, 5.4).
    "PRESCREEN_BAD_DATA": _BAD_FORMAT,
    "PRESCREEN_NOT_SPA_DATA": _NOT_SPA,
    # Ours, stricter than the reference: '=' in the wire data (packet.py).
    "PRESCREEN_EQUALS_SIGN": _NOT_SPA,
    "HTTP_BAD_DATA": _BAD_FORMAT,
    # Ours, stricter than the reference: a ciphertext whose base64 is not in
    # canonical form (packet.py); worded as libfko's "not base64" error.
    "NONCANONICAL_BASE64": "Args contain invalid data: FKO_ERROR_INVALID_DATA_ENCODE_NOTBASE64",
    # Ours, stricter than the reference: the blob does not start "Salted__".
    "BAD_SALTED_MAGIC": "Decryption failed or decrypted data is invalid",
})

#: Every code this package raises, mapped to its default (reference) message.
REFUSAL_MESSAGES: Final = MappingProxyType(_MESSAGES)


class SpaRefused(Exception):
    """This packet is refused; the one exception of the SPA core.

    Attributes:
        code: short stable identifier, e.g. ``"HMAC_COMPAREFAIL"`` (see
            ``REFUSAL_MESSAGES`` for the full list).
        message: the reference server's wording for the failure, e.g.
            ``"Args contain invalid data: FKO_ERROR_INVALID_DATA_HMAC_COMPAREFAIL"``.
            ``str(exc) == exc.message``. It never contains key material.
    """

    code: str
    message: str

    def __init__(self, code: str, message: str | None = None) -> None:
        if message is None:
            message = REFUSAL_MESSAGES.get(code, code)
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"SpaRefused({self.code!r}, {self.message!r})"

    def __reduce__(self) -> tuple[type[SpaRefused], tuple[str, str]]:
        # Keep the two-argument constructor working across pickling
        # (multiprocessing workers, for example).
        return (SpaRefused, (self.code, self.message))
