# fwknopd.conf parsing (spa-protocol.md 7.1, 7.2, 5.2, 6.6): syntax rules one
# by one, defaults, the fatal errors with their file/line/variable, the
# warnings, and command-line overrides.

from __future__ import annotations

from pathlib import Path

import pytest

from fwknopd_uci.config import SERVER_VARIABLES, ConfigError, ServerConfig, parse_server_conf


def conf(tmp_path: Path, text: str | bytes, name: str = "fwknopd.conf") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    path.chmod(0o600)
    return path


def load(tmp_path: Path, text: str | bytes, **kwargs: bool) -> tuple[ServerConfig, list[str]]:
    return parse_server_conf(conf(tmp_path, text), **kwargs)


def fatal(tmp_path: Path, text: str | bytes) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value


def test_config_server_defaults(tmp_path: Path) -> None:
    config, warnings = load(tmp_path, "# nothing set\n")
    assert warnings == []
    assert config.pcap_intf == "eth0"
    assert config.pcap_filter == "udp port 62201"
    assert config.run_dir == "/var/run/fwknop"
    assert config.conf_dir == "/etc/fwknop"
    assert config.access_file == "/etc/fwknop/access.conf"
    assert config.digest_file == "/var/run/fwknop/digest.cache"
    assert config.pid_file == "/var/run/fwknop/fwknopd.pid"
    assert config.nft_table == ("inet", "fw4")
    assert config.nft_chain == "input"
    assert config.nft_set == "fwknopd_allow4"
    assert config.enable_spa_packet_aging and config.max_spa_packet_age == 120
    assert config.enable_digest_persistence
    assert not config.enable_udp_server and config.udpserv_port == 62201
    assert not config.enable_pcap_promisc
    assert not config.enable_spa_over_http and not config.allow_any_user_agent
    assert not config.enable_x_forwarded_for
    assert not config.enable_ipt_forwarding and not config.enable_ipt_local_nat
    assert config.exit_at_intf_down
    assert config.syslog_identity == "fwknopd" and config.syslog_facility == "LOG_DAEMON"
    assert config.verbose == 0
    assert config.pcap_file is None and config.access_folder is None
    assert config.explicit == frozenset()
    assert set(config.values) <= set(SERVER_VARIABLES)
    assert config.values["CONFIG_FILE"] == str(tmp_path / "fwknopd.conf")


def test_config_server_comments_only_in_column_one(tmp_path: Path) -> None:
    """7.1: #, ;, CR, LF and NUL in column 1 are comments; `  # x` is not."""
    text = b"# c\n; c\n\r\n\n\x00PCAP_INTF eth9\n  # indented\nPCAP_INTF eth1\n"
    config, warnings = load(tmp_path, text)
    assert config.pcap_intf == "eth1"
    assert warnings == [(f"[*] Ignoring an unknown configuration parameter in "
                         f"{tmp_path / 'fwknopd.conf'} at line 6 (not shown: it does not look "
                         "like a variable name)")]


def test_config_server_value_cut_at_semicolon_and_spaces_kept(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "PCAP_FILTER   udp port 62201 or tcp port 80 ; comment\n"
                               "PCAP_INTF\teth1;\n")
    assert config.pcap_filter == "udp port 62201 or tcp port 80"
    assert config.pcap_intf == "eth1"


def test_config_server_crlf_and_cr_end_the_value(tmp_path: Path) -> None:
    config, _ = load(tmp_path, b"PCAP_INTF eth1\r\nSYSLOG_IDENTITY abc\rdef\n")
    assert config.pcap_intf == "eth1"
    assert config.syslog_identity == "abc"


def test_config_server_nul_ends_the_line(tmp_path: Path) -> None:
    config, _ = load(tmp_path, b"PCAP_INTF eth1\x00garbage\n")
    assert config.pcap_intf == "eth1"


def test_config_server_indented_variable_is_read(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "   PCAP_INTF   eth2\n")
    assert config.pcap_intf == "eth2"


def test_config_server_no_colon_stripping(tmp_path: Path) -> None:
    """7.1 / 14.21: `PCAP_INTF: eth0` is an unknown variable in fwknopd.conf."""
    config, warnings = load(tmp_path, "PCAP_INTF: eth1\n")
    assert config.pcap_intf == "eth0"
    assert any("Ignoring unknown configuration parameter: 'PCAP_INTF:'" in w for w in warnings)


def test_config_server_names_are_case_sensitive(tmp_path: Path) -> None:
    config, warnings = load(tmp_path, "pcap_intf eth1\nPCAP_INTF_X eth2\n")
    assert config.pcap_intf == "eth0"
    assert any("unknown configuration parameter" in w and "line 1" in w for w in warnings)
    assert not any("pcap_intf" in w for w in warnings)  # not name-like: not quoted
    assert any("'PCAP_INTF_X'" in w and "line 2" in w for w in warnings)


def test_config_server_variable_without_value_is_skipped(tmp_path: Path) -> None:
    config, warnings = load(tmp_path, "PCAP_INTF\nPCAP_FILTER ;\nMAX_SPA_PACKET_AGE 60\n")
    assert config.pcap_intf == "eth0" and config.pcap_filter == "udp port 62201"
    assert config.max_spa_packet_age == 60
    assert [w for w in warnings if "Invalid config file entry" in w and "line 1" in w]
    assert [w for w in warnings if "Invalid config file entry" in w and "line 2" in w]


def test_config_server_later_lines_override(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "PCAP_INTF eth1\nPCAP_INTF eth2\n")
    assert config.pcap_intf == "eth2"
    assert config.lines["PCAP_INTF"] == 2


def test_config_server_embedded_variable(tmp_path: Path) -> None:
    config, warnings = load(tmp_path, "FWKNOP_RUN_DIR /tmp/run\n"
                                      "DIGEST_FILE $FWKNOP_RUN_DIR/cache.db\n")
    assert config.digest_file == "/tmp/run/cache.db"
    assert config.pid_file == "/tmp/run/fwknopd.pid"
    assert warnings == []


def test_config_server_embedded_variable_must_be_set_earlier(tmp_path: Path) -> None:
    """7.1: only a variable already set in the file can be referenced."""
    config, warnings = load(tmp_path, "DIGEST_FILE $FWKNOP_RUN_DIR/x\nPCAP_INTF $NOPE\n"
                                      "SYSLOG_IDENTITY $\n")
    assert config.digest_file == "/var/run/fwknop/digest.cache"
    assert config.pcap_intf == "eth0"
    assert sum("Invalid embedded variable in" in w for w in warnings) == 3


def test_config_server_dollar_inside_a_value_is_literal(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "SYSLOG_IDENTITY fw$knop\n")
    assert config.syslog_identity == "fw$knop"


def test_config_server_derived_paths(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "FWKNOP_CONF_DIR /opt/fw/\nFWKNOP_RUN_DIR /run/fw\n")
    assert config.access_file == "/opt/fw/access.conf"
    assert config.digest_file == "/run/fw/digest.cache"
    assert config.pid_file == "/run/fw/fwknopd.pid"


@pytest.mark.parametrize("value, expected", [
    ("Y", True), ("y", True), ("Yes", True), ("yes please", True),
    ("N", False), ("no", False), ("1", False), ("true", False),  # strncasecmp(v, "Y", 1)
])
def test_config_server_booleans_test_the_first_letter(tmp_path: Path, value: str,
                                                      expected: bool) -> None:
    config, _ = load(tmp_path, f"ENABLE_SPA_OVER_HTTP {value}\n")
    assert config.enable_spa_over_http is expected


@pytest.mark.parametrize("value, expected", [("N", False), ("no", False), ("Y", True),
                                             ("x", True), ("0", True)])
def test_config_server_allow_any_user_agent_is_tested_against_n(tmp_path: Path, value: str,
                                                                expected: bool) -> None:
    config, _ = load(tmp_path, f"ALLOW_ANY_USER_AGENT {value}\n")
    assert config.allow_any_user_agent is expected


@pytest.mark.parametrize("value, expected", [("Y", True), ("yes", True), ("N", False),
                                             ("no", False)])
def test_config_server_udp_server_y_or_n(tmp_path: Path, value: str, expected: bool) -> None:
    config, _ = load(tmp_path, f"ENABLE_UDP_SERVER {value}\n")
    assert config.enable_udp_server is expected


def test_config_server_udp_server_neither_y_nor_n_is_fatal(tmp_path: Path) -> None:
    error = fatal(tmp_path, "PCAP_INTF eth0\nENABLE_UDP_SERVER maybe\n")
    assert (error.line, error.variable) == (2, "ENABLE_UDP_SERVER")
    assert error.message == "No available capture mode specified. Aborting."
    assert str(error) == (f"{tmp_path / 'fwknopd.conf'}:2: ENABLE_UDP_SERVER: "
                          "No available capture mode specified. Aborting.")


@pytest.mark.parametrize("name, value, low, high", [
    ("MAX_SPA_PACKET_AGE", "0", 1, 100000),
    ("MAX_SPA_PACKET_AGE", "100001", 1, 100000),
    ("MAX_SPA_PACKET_AGE", "99999999999", 1, 100000),  # ERANGE
    ("UDPSERV_PORT", "0", 1, 65535),
    ("UDPSERV_PORT", "70000", 1, 65535),
    ("TCPSERV_PORT", "65536", 1, 65535),
    ("PCAP_DISPATCH_COUNT", "0", 1, 8388608),
    ("PCAP_LOOP_SLEEP", "8388609", 1, 8388608),
    ("MAX_SNIFF_BYTES", "32769", 1, 32768),
    ("RULES_CHECK_THRESHOLD", "-1", 0, 131071),
    ("UDPSERV_SELECT_TIMEOUT", "0", 1, 8388608),
])
def test_config_server_integer_out_of_range_is_fatal(tmp_path: Path, name: str, value: str,
                                                     low: int, high: int) -> None:
    error = fatal(tmp_path, f"# c\n{name} {value}\n")
    assert (error.line, error.variable) == (2, name)
    assert error.message == f"var {name} value '{value}' not in the range {low}-{high}"


def test_config_server_integer_forms_that_are_accepted(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "MAX_SPA_PACKET_AGE +060\nRULES_CHECK_THRESHOLD 0;\n")
    assert config.max_spa_packet_age == 60
    assert config.rules_check_threshold == 0


def test_config_server_syslog_facility(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "SYSLOG_FACILITY LOG_LOCAL3\n")
    assert config.syslog_facility == "LOG_LOCAL3"
    error = fatal(tmp_path, "SYSLOG_FACILITY LOG_USER\n")
    assert (error.line, error.variable) == (1, "SYSLOG_FACILITY")


@pytest.mark.parametrize("name, value", [
    ("NFT_TABLE", "bridge filter"), ("NFT_TABLE", "inet"), ("NFT_TABLE", "inet fw4 x"),
    ("NFT_TABLE", "ip6 fw4"), ("NFT_CHAIN", "in put"), ("NFT_CHAIN", "in-put"),
    ("NFT_SET", "set}"), ("NFT_SET", "a" * 65),
])
def test_config_server_bad_nft_names_are_fatal(tmp_path: Path, name: str, value: str) -> None:
    error = fatal(tmp_path, f"{name} {value}\n")
    assert (error.line, error.variable) == (1, name)


def test_config_server_nft_settings(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "NFT_TABLE ip  fwknop\nNFT_CHAIN knock_in\nNFT_SET grants\n")
    assert config.nft_table == ("ip", "fwknop")
    assert (config.nft_chain, config.nft_set) == ("knock_in", "grants")


def test_config_server_legacy_firewall_variables_are_known(tmp_path: Path) -> None:
    text = ("IPT_INPUT_ACCESS ACCEPT, filter, INPUT, 1, FWKNOP_INPUT, 1\n"
            "ENABLE_FIREWD_FORWARDING N\nNFQ_QUEUE_NUMBER 3\nGPG_HOME_DIR /x\n"
            "FLUSH_IPT_AT_EXIT N\nENABLE_PCAP_ANY_DIRECTION Y\nIPFW_MAX_RULES 10\n")
    config, warnings = load(tmp_path, text)
    assert warnings == []
    assert config.values["NFQ_QUEUE_NUMBER"] == "3"


def test_config_server_pcap_file_mode_turns_aging_off(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "# empty\n", pcap_file_mode=True)
    assert not config.enable_spa_packet_aging
    config, _ = load(tmp_path, "ENABLE_SPA_PACKET_AGING Y\n", pcap_file_mode=True)
    assert config.enable_spa_packet_aging
    config, _ = load(tmp_path, "PCAP_FILE /tmp/x.pcap\n")
    assert not config.enable_spa_packet_aging and config.pcap_file == "/tmp/x.pcap"


def test_config_server_with_values_overrides_and_rederives(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "PCAP_INTF eth1\nMAX_SPA_PACKET_AGE 60\n")
    moved = config.with_values(FWKNOP_RUN_DIR="/tmp/r", PCAP_INTF="wan")
    assert moved.pcap_intf == "wan" and moved.max_spa_packet_age == 60
    assert moved.digest_file == "/tmp/r/digest.cache" and moved.pid_file == "/tmp/r/fwknopd.pid"
    assert moved.explicit == {"PCAP_INTF", "MAX_SPA_PACKET_AGE", "FWKNOP_RUN_DIR"}
    assert config.pcap_intf == "eth1"  # the original is unchanged


def test_config_server_with_values_keeps_explicit_paths(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "DIGEST_FILE /data/digest\n")
    assert config.with_values(FWKNOP_RUN_DIR="/tmp/r").digest_file == "/data/digest"


def test_config_server_with_values_pcap_file_turns_aging_off(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "# empty\n")
    assert not config.with_values(PCAP_FILE="/tmp/x.pcap").enable_spa_packet_aging


def test_config_server_with_values_errors(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "MAX_SPA_PACKET_AGE 60\n")
    with pytest.raises(ConfigError) as info:
        config.with_values(NOT_A_VARIABLE="1")
    assert info.value.variable == "NOT_A_VARIABLE" and info.value.line is None
    with pytest.raises(ConfigError) as info:
        config.with_values(ENABLE_UDP_SERVER="x")
    assert str(info.value) == ("<command line>: ENABLE_UDP_SERVER: "
                               "No available capture mode specified. Aborting.")


def test_config_server_error_in_file_value_keeps_its_line_after_override(tmp_path: Path) -> None:
    config, _ = load(tmp_path, "# c\nSYSLOG_FACILITY LOG_LOCAL1\n")
    good = config.with_values(PCAP_INTF="eth5")
    assert good.lines["SYSLOG_FACILITY"] == 2


def test_config_server_missing_file_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_server_conf(tmp_path / "nope.conf")
    assert info.value.line is None and "was not found" in info.value.message


def test_config_server_directory_is_fatal(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        parse_server_conf(tmp_path)


def test_config_server_overlong_line(tmp_path: Path) -> None:
    """7.1: fwknopd reads 1023 bytes per line; we refuse rather than cut."""
    config, _ = load(tmp_path, "PCAP_FILTER " + "x" * (1023 - 12) + "\n")
    assert len(config.pcap_filter) == 1023 - 12
    error = fatal(tmp_path, "# ok\nPCAP_FILTER " + "x" * 1024 + "\n")
    assert error.line == 2 and "longer than 1023 bytes" in error.message
    config, warnings = load(tmp_path, "#" + "c" * 5000 + "\nPCAP_INTF eth1\n")
    assert config.pcap_intf == "eth1"
    assert any("comment line longer than 1023 bytes" in w for w in warnings)


def test_config_server_invalid_utf8_is_kept_not_fatal(tmp_path: Path) -> None:
    config, warnings = load(tmp_path, b"SYSLOG_IDENTITY fw\xffknop\n\xfe\xfe x\n")
    assert config.syslog_identity.encode("utf-8", "surrogateescape") == b"fw\xffknop"
    # Not name-like, so not quoted; the warning is still plain UTF-8.
    assert any("unknown configuration parameter" in w and "line 2" in w for w in warnings)
    assert all(w.encode("utf-8") for w in warnings)


def test_config_server_permission_warning(tmp_path: Path) -> None:
    path = conf(tmp_path, "PCAP_INTF eth1\n")
    path.chmod(0o644)
    _, warnings = parse_server_conf(path)
    assert any("permissions should only be user read/write" in w for w in warnings)
    path.chmod(0o600)
    assert parse_server_conf(path)[1] == []


def test_config_server_verbose(tmp_path: Path) -> None:
    assert load(tmp_path, "VERBOSE 2\n")[0].verbose == 2
    assert load(tmp_path, "VERBOSE -4\n")[0].verbose == 0


def test_config_server_class_attribute_access_does_not_crash() -> None:
    assert "PCAP_INTF" in (ServerConfig.pcap_intf.__doc__ or "")


# -- break-test findings ----------------------------------------------------------

GEN_KEY = "NcjhQ3vq9n8fLmP2xYzAbCdEfGhIjKlMnOpQrStUvGY="
INTEGERS = ["PCAP_DISPATCH_COUNT", "PCAP_LOOP_SLEEP", "MAX_SNIFF_BYTES", "MAX_SPA_PACKET_AGE",
            "RULES_CHECK_THRESHOLD", "TCPSERV_PORT", "UDPSERV_PORT", "UDPSERV_SELECT_TIMEOUT",
            "CMD_EXEC_TIMEOUT", "NFQ_PORT", "NFQ_QUEUE_NUMBER", "NFQ_LOOP_SLEEP",
            "IPFW_START_RULE_NUM", "IPFW_MAX_RULES", "IPFW_ACTIVE_SET_NUM", "IPFW_EXPIRE_SET_NUM",
            "IPFW_EXPIRE_PURGE_INTERVAL", "PF_EXPIRE_INTERVAL", "VERBOSE"]


@pytest.mark.parametrize("name", INTEGERS)
@pytest.mark.parametrize("value", ["ten", "60s", "0x10", "1 2", "٣"])
def test_config_server_non_numeric_integer_is_fatal(tmp_path: Path, name: str,
                                                    value: str) -> None:
    """7.1 / 1.7: strtol would read "ten" as 0 and "60s" as 60; we refuse."""
    error = fatal(tmp_path, f"# c\n{name} {value}\n")
    assert (error.line, error.variable) == (2, name)
    assert "not a whole number" in error.message and f"'{value}'" not in error.message


def test_config_server_unused_integers_must_fit_an_int(tmp_path: Path) -> None:
    assert load(tmp_path, "NFQ_QUEUE_NUMBER -3\nVERBOSE +2\n")[0].verbose == 2
    error = fatal(tmp_path, "IPFW_MAX_RULES 2147483648\n")
    assert error.variable == "IPFW_MAX_RULES" and "not in the range" in error.message


def test_config_server_with_values_keeps_working(tmp_path: Path) -> None:
    """The daemon's -O files and options go through with_values."""
    config, _ = load(tmp_path, "PCAP_INTF eth1\nMAX_SPA_PACKET_AGE 60\n")
    more, _ = parse_server_conf(conf(tmp_path, "UDPSERV_PORT 6000\nVERBOSE 1\n", "o.conf"))
    merged = config.with_values(**{k: v for k, v in more.values.items() if k in more.explicit})
    assert (merged.pcap_intf, merged.udpserv_port, merged.verbose) == ("eth1", 6000, 1)
    assert merged.lines["MAX_SPA_PACKET_AGE"] == 2
    with pytest.raises(ConfigError) as info:
        merged.with_values(MAX_SPA_PACKET_AGE="ten")
    assert str(info.value) == ("<command line>: MAX_SPA_PACKET_AGE: var MAX_SPA_PACKET_AGE "
                               "value is not a whole number (range 1-100000)")


@pytest.mark.parametrize("line", [f"KEY_BASE64={GEN_KEY}", GEN_KEY, f"{GEN_KEY} value",
                                  f"HMAC_KEY_BASE64:{GEN_KEY} x", f"PCAP_INTF ${GEN_KEY}",
                                  f"PCAP_INTF $NOT{GEN_KEY}"])
def test_config_server_keys_are_not_echoed(tmp_path: Path, line: str) -> None:
    config, warnings = load(tmp_path, f"{line}\n")
    assert config.pcap_intf == "eth0"
    assert len(warnings) == 1 and "line 1" in warnings[0]
    assert GEN_KEY[:8] not in warnings[0]


@pytest.mark.parametrize("line", [f"SYSLOG_FACILITY {GEN_KEY}", f"NFT_TABLE inet {GEN_KEY}",
                                  f"NFT_SET {GEN_KEY}",
                                  f"MAX_SPA_PACKET_AGE 60 HMAC_KEY {GEN_KEY}",
                                  f"ENABLE_UDP_SERVER x{GEN_KEY}"])
def test_config_server_bad_values_are_not_quoted(tmp_path: Path, line: str) -> None:
    error = fatal(tmp_path, f"{line}\n")
    assert error.line == 1 and GEN_KEY[:8] not in str(error)


def test_config_server_embedded_variable_names_known_references(tmp_path: Path) -> None:
    _, warnings = load(tmp_path, "DIGEST_FILE $FWKNOP_RUN_DIR/x\nPCAP_INTF $NOPE\n")
    assert "$FWKNOP_RUN_DIR has no value earlier in the file" in warnings[0]
    assert "unknown variable" in warnings[1] and "NOPE" not in warnings[1]


def test_config_server_file_over_one_mib_is_fatal(tmp_path: Path) -> None:
    filler = "# " + "x" * 1000 + "\n"
    text = filler * (1024 * 1024 // len(filler))
    assert load(tmp_path, text)[0].pcap_intf == "eth0"
    error = fatal(tmp_path, text + filler)
    assert error.line is None and "larger than 1048576 bytes" in error.message


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_config_server_device_is_refused(device: str) -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        parse_server_conf(device)


def test_config_server_utf8_bom_is_ignored(tmp_path: Path) -> None:
    config, warnings = load(tmp_path, "\ufeffPCAP_INTF eth7\n")
    assert config.pcap_intf == "eth7" and warnings == []
    assert load(tmp_path, b"\xef\xbb\xbf")[1] == []  # a BOM alone is an empty file


def test_config_server_error_carries_the_warnings_before_it(tmp_path: Path) -> None:
    error = fatal(tmp_path, "PCAP_INTF_TYPO eth1\nUDPSERV_PORT 0\n")
    assert error.variable == "UDPSERV_PORT"
    assert len(error.warnings) == 1 and "'PCAP_INTF_TYPO'" in error.warnings[0]


def test_config_server_warnings_are_bounded(tmp_path: Path) -> None:
    _, warnings = load(tmp_path, "X\n" * 100_000)
    assert len(warnings) == 101 and warnings[-1].startswith("[*] More than 100 warnings")
