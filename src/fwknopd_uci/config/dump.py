# The `fwknopd -D` text: every fwknopd.conf variable, then every stanza.
#
# Purpose: let an operator see what fwknopd-uci made of the two files
# (spa-protocol.md 10, `-D, --dump-config`) without ever printing a secret.
#
# Strategy: the server part keeps fwknopd's line format
# `%3i. %-28s =  '%s'` (0-based, unset values shown as <not set>); the
# stanza part follows fwknopd's "SOURCE (n):" blocks with right-aligned
# names. Effective values are shown where a default or a conversion applies
# (timeouts, mode, HMAC type, booleans); everything else as written.
#
# Invariants: no value of KEY, KEY_BASE64, HMAC_KEY, HMAC_KEY_BASE64,
# GPG_DECRYPT_PW or any other name holding KEY or PW is ever part of the
# output, only whether it is set (and the key lengths, as fwknopd prints
# them); nor is a value that holds such a name in capitals, which is most
# likely two lines run together (`REQUIRE_USERNAME bob KEY_BASE64 <key>`);
# every value passes shown(). Oddly written key lines (`KEY_BASE64=<key>`,
# a key alone on a line) never reach a dump: the parsers refuse or ignore
# them, so they are in no ServerConfig or AccessStanza.

from __future__ import annotations

import re
from collections.abc import Sequence

from .access_conf import ACCESS_VARIABLES, AccessStanza
from .errors import is_secret_name, shown
from .server_conf import SERVER_VARIABLES, ServerConfig

__all__ = ["MASK", "dump_config"]

#: What fwknopd prints instead of a key.
MASK = "<see the access.conf file>"
_NOT_SET = "<not set>"
_RULE = "=" * 62
_HIDDEN = "<hidden: the value names a key variable; see the file>"
_KEY_WORD = re.compile(r"KEY|PW")


def _written(value: str | None) -> str:
    """A value as written, unless it looks like it carries a key line."""
    if value is None:
        return _NOT_SET
    return _HIDDEN if _KEY_WORD.search(value) else shown(value)


def _server_lines(config: ServerConfig) -> list[str]:
    lines = ["Current fwknopd config settings:"]
    for number, name in enumerate(SERVER_VARIABLES):
        value = config.values.get(name)
        text = MASK if is_secret_name(name) and value is not None else _written(value)
        lines.append(f"{number:3d}. {name:<28} =  '{text}'")
    return lines


def _effective(stanza: AccessStanza) -> dict[str, str]:
    """Values shown as fwknopd uses them rather than as written."""
    yes_no = {True: "Yes", False: "No"}
    keys = stanza.keys
    shown_values = {
        "FW_ACCESS_TIMEOUT": str(stanza.fw_access_timeout),
        "MAX_FW_TIMEOUT": str(stanza.max_fw_timeout),
        "ENABLE_CMD_EXEC": yes_no[stanza.enable_cmd_exec],
        "ENABLE_CMD_SUDO_EXEC": yes_no[stanza.enable_cmd_sudo_exec],
        "REQUIRE_SOURCE_ADDRESS": yes_no[stanza.require_source_address],
        "FORCE_MASQUERADE": yes_no[stanza.force_masquerade],
        "FORWARD_ALL": yes_no[stanza.forward_all],
        "DISABLE_DNAT": yes_no[stanza.disable_dnat],
    }
    if stanza.force_nat is not None:
        shown_values["FORCE_NAT"] = stanza.force_nat
    if keys is not None:
        shown_values["ENCRYPTION_MODE"] = keys.mode
        if keys.hmac_key is not None:
            shown_values["HMAC_DIGEST_TYPE"] = keys.hmac_type
    return shown_values


def _stanza_lines(stanza: AccessStanza) -> list[str]:
    lines = [f"SOURCE ({stanza.number}):  {shown(stanza.source.text)}", _RULE]
    written = stanza.variables
    effective = _effective(stanza)
    keys = stanza.keys
    lengths = {
        "KEY_BASE64": ("KEY_LEN", 0 if keys is None else len(keys.key)),
        "HMAC_KEY_BASE64": ("HMAC_KEY_LEN", 0 if keys is None or keys.hmac_key is None
                            else len(keys.hmac_key)),
    }
    for name in ACCESS_VARIABLES:
        if name in ("SOURCE", "REQUIRE_SOURCE"):  # the header; the synonym is merged
            continue
        value = written.get(name)
        if is_secret_name(name):
            # Only whether it is set: never the value (-D output gets pasted).
            text = _NOT_SET if value is None else MASK
        elif name in effective:
            text = effective[name]
        else:
            text = _written(value)
        lines.append(f"{name:>27}:  {text}")
        if name in lengths:
            label, length = lengths[name]
            lines.append(f"{label:>27}:  {length}")
    return lines


def dump_config(config: ServerConfig, stanzas: Sequence[AccessStanza]) -> str:
    """Render the ``fwknopd -D`` text for ``config`` and ``stanzas``.

    Every key value is replaced by ``<see the access.conf file>``.
    """
    lines = _server_lines(config)
    lines += ["", "Current fwknopd access settings:"]
    if not stanzas:
        lines.append("    ** No Access Settings Defined **")
    for stanza in stanzas:
        lines += _stanza_lines(stanza)
        lines.append("")
    return "\n".join(lines) + "\n"
