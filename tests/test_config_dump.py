# The -D text (spa-protocol.md 10): every fwknopd.conf variable in fwknopd's
# line format, every stanza, and never a key.

from __future__ import annotations

import re
from pathlib import Path

from fwknopd_uci.config import (
    SERVER_VARIABLES,
    AccessStanza,
    AddressList,
    ServerConfig,
    dump_config,
    parse_access_conf,
    parse_server_conf,
)
from fwknopd_uci.config.dump import MASK
from fwknopd_uci.spa import StanzaKeys

SECRETS = ("Sup3rSecretKey", "d2hhdGV2ZXI=", "HmacSecretValue", "aG1hY3NlY3JldGI2NA==",
           "GpgPassphrase")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def parsed(tmp_path: Path, access: str, server: str = "# defaults\n"
           ) -> tuple[str, list[AccessStanza]]:
    config, _ = parse_server_conf(write(tmp_path / "fwknopd.conf", server))
    stanzas, _ = parse_access_conf(write(tmp_path / "access.conf", access))
    return dump_config(config, stanzas), stanzas


def test_config_dump_server_lines_use_fwknopd_format(tmp_path: Path) -> None:
    text, _ = parsed(tmp_path, "SOURCE ANY\nKEY k\n", "PCAP_INTF wan0\n")
    lines = text.splitlines()
    assert lines[0] == "Current fwknopd config settings:"
    body = lines[1:1 + len(SERVER_VARIABLES)]
    for number, (line, name) in enumerate(zip(body, SERVER_VARIABLES, strict=True)):
        assert re.fullmatch(r"[ \d]{3}\. \S+ +=  '.*'", line), line
        assert line.startswith(f"{number:3d}. {name:<28} =  '")
    assert "  2. PCAP_INTF                    =  'wan0'" in lines
    assert f"{SERVER_VARIABLES.index('PCAP_FILE'):3d}. {'PCAP_FILE':<28} =  '<not set>'" in lines


def test_config_dump_masks_every_secret(tmp_path: Path) -> None:
    access = (f"SOURCE ANY\nKEY {SECRETS[0]}\nKEY_BASE64 {SECRETS[1]}\nHMAC_KEY {SECRETS[2]}\n"
              f"HMAC_KEY_BASE64 {SECRETS[3]}\nGPG_DECRYPT_PW {SECRETS[4]}\n")
    text, stanzas = parsed(tmp_path, access)
    for secret in SECRETS:
        assert secret not in text
    assert text.count(MASK) == 5
    assert stanzas[0].variables["KEY"] == SECRETS[0]  # kept in memory, hidden in the dump
    for name in ("KEY", "KEY_BASE64", "HMAC_KEY", "HMAC_KEY_BASE64", "GPG_DECRYPT_PW"):
        assert f"{name:>27}:  {MASK}" in text


def test_config_dump_masks_keys_from_include_keys(tmp_path: Path) -> None:
    keys = write(tmp_path / "keys.conf", f"KEY {SECRETS[0]}\nHMAC_KEY {SECRETS[2]}\n")
    text, _ = parsed(tmp_path, f"SOURCE 10.0.0.0/8\n%include_keys {keys}\n")
    assert SECRETS[0] not in text and SECRETS[2] not in text
    assert f"{'KEY_LEN':>27}:  {len(SECRETS[0])}" in text
    assert f"{'HMAC_KEY_LEN':>27}:  {len(SECRETS[2])}" in text


def defaults(tmp_path: Path) -> ServerConfig:
    return parse_server_conf(write(tmp_path / "fwknopd.conf", "# defaults\n"))[0]


def test_config_dump_masks_secrets_of_hand_built_stanzas(tmp_path: Path) -> None:
    stanza = AccessStanza(number=1, source=AddressList(True, (), "ANY"),
                          keys=StanzaKeys(b"k1", b"h1"),
                          variables={"SOURCE": "ANY", "KEY": "hand-made-secret"})
    assert "hand-made-secret" not in dump_config(defaults(tmp_path), [stanza])


def test_config_dump_stanza_block(tmp_path: Path) -> None:
    text, _ = parsed(tmp_path, "SOURCE ANY\nKEY one\n\nSOURCE 10.0.0.0/8, 192.0.2.1\nKEY two\n"
                               "OPEN_PORTS tcp/22\nFW_ACCESS_TIMEOUT 0\nREQUIRE_SOURCE Y\n")
    assert "Current fwknopd access settings:" in text
    assert "SOURCE (1):  ANY" in text
    assert "SOURCE (2):  10.0.0.0/8, 192.0.2.1" in text
    block = text.split("SOURCE (2):")[1]
    assert f"{'OPEN_PORTS':>27}:  tcp/22" in block
    assert f"{'FW_ACCESS_TIMEOUT':>27}:  30" in block        # effective value
    assert f"{'REQUIRE_SOURCE_ADDRESS':>27}:  Yes" in block
    assert f"{'DESTINATION':>27}:  <not set>" in block
    assert f"{'ENCRYPTION_MODE':>27}:  cbc" in block


def test_config_dump_without_stanzas(tmp_path: Path) -> None:
    assert "** No Access Settings Defined **" in dump_config(defaults(tmp_path), [])


def test_config_dump_escapes_control_characters(tmp_path: Path) -> None:
    text, _ = parsed(tmp_path, "SOURCE ANY\nKEY k\nREQUIRE_USERNAME a\x1b[2Jb\n")
    assert "\x1b" not in text and "a\\x1b[2Jb" in text


GEN_KEY = "NcjhQ3vq9n8fLmP2xYzAbCdEfGhIjKlMnOpQrStUvGY="


def test_config_dump_hides_a_key_line_run_into_another(tmp_path: Path) -> None:
    """`REQUIRE_USERNAME bob KEY_BASE64 <key>` is two lines run together: the
    value holds a key variable's name, so -D does not print it."""
    text, stanzas = parsed(tmp_path, f"SOURCE ANY\nKEY k\nREQUIRE_USERNAME bob KEY_BASE64 "
                                     f"{GEN_KEY}\nCMD_CYCLE_OPEN x HMAC_KEY {GEN_KEY}\n"
                                     "CMD_CYCLE_CLOSE NONE\n",
                           f"PCAP_FILTER udp port 1 HMAC_KEY_BASE64 {GEN_KEY}\n")
    assert GEN_KEY[:8] not in text
    assert stanzas[0].require_username is not None  # kept as written, only not shown
    assert f"{'REQUIRE_USERNAME':>27}:  <hidden" in text
    assert "PCAP_FILTER                  =  '<hidden" in text


def test_config_dump_odd_key_lines_never_reach_it(tmp_path: Path) -> None:
    access = (f"SOURCE ANY\nKEY k\n{GEN_KEY} trailing\nKEY:{GEN_KEY}:x trailing\n"
              f"\"KEY_BASE64\" {GEN_KEY}\nKEY_BASE64: {GEN_KEY}\n")
    server = f"{GEN_KEY} x\nKEY_BASE64 {GEN_KEY}\nHMAC_KEY: {GEN_KEY}\n"
    text, stanzas = parsed(tmp_path, access, server)
    assert GEN_KEY[:8] not in text
    assert stanzas[0].keys is not None and len(stanzas[0].keys.key) == 32


def test_config_dump_masks_every_name_holding_key_or_pw(tmp_path: Path) -> None:
    stanza = AccessStanza(number=1, source=AddressList(True, (), "ANY"),
                          keys=StanzaKeys(b"k1", None),
                          variables={"SOURCE": "ANY", "GPG_ALLOW_NO_PW": "secret-ish",
                                     "GPG_DECRYPT_PW": "pw-secret"})
    text = dump_config(defaults(tmp_path), [stanza])
    assert "secret-ish" not in text and "pw-secret" not in text
    assert f"{'GPG_ALLOW_NO_PW':>27}:  {MASK}" in text
