# The fwknopd command line (spa-protocol.md 10): the one-shot options, exit
# codes and messages, run as a real child process.

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from netns import netns, requires_root

KEY = "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc="
HMAC = ("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1"
        "lqQXuQ==")


def fwknopd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fwknopd_uci.server.cli", *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    (tmp_path / "fwknopd.conf").write_text("PCAP_INTF eth1;\n")
    (tmp_path / "access.conf").write_text(
        f"SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HMAC}\nOPEN_PORTS tcp/22\n")
    for name in ("fwknopd.conf", "access.conf"):
        os.chmod(tmp_path / name, 0o600)
    return tmp_path


def conf_args(folder: Path) -> list[str]:
    return ["-c", str(folder / "fwknopd.conf"), "-a", str(folder / "access.conf"),
            "-d", str(folder / "digest.cache"), "-p", str(folder / "fwknopd.pid")]


def test_cli_version_and_help() -> None:
    assert fwknopd("-V").stdout.startswith("fwknopd server ")
    usage = fwknopd("-h").stdout
    for option in ("--foreground", "--interface", "--udp-server", "--test", "--dump-config",
                   "--exit-parse-config", "--fw-list", "--fw-flush", "--pcap-file",
                   "--key-gen", "--key-gen-file", "--key-len", "--hmac-key-len",
                   "--hmac-digest-type", "--packet-limit", "--digest-file", "--pid-file"):
        assert option in usage


def test_cli_key_gen_prints_fwknop_format() -> None:
    out = fwknopd("--key-gen").stdout.splitlines()
    assert [line.split(": ")[0] for line in out] == ["KEY_BASE64", "HMAC_KEY_BASE64"]
    key, hmac_key = (base64.b64decode(line.split(": ")[1]) for line in out)
    assert (len(key), len(hmac_key)) == (32, 64)
    md5 = fwknopd("--key-gen", "--hmac-digest-type", "md5", "--key-len", "16").stdout
    assert len(base64.b64decode(md5.splitlines()[1].split(": ")[1])) == 16
    assert fwknopd("--key-gen", "--key-len", "33").returncode == 1


def test_cli_key_gen_file_is_private(tmp_path: Path) -> None:
    target = tmp_path / "keys"
    result = fwknopd("--key-gen-file", str(target))
    assert result.returncode == 0 and "Wrote Rijndael and HMAC keys" in result.stdout
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.read_text().startswith("KEY_BASE64: ")


def test_cli_dump_config_masks_keys(conf: Path) -> None:
    result = fwknopd("-D", *conf_args(conf))
    assert result.returncode == 0
    assert "PCAP_INTF" in result.stdout and "eth1" in result.stdout
    assert KEY not in result.stdout and HMAC[:20] not in result.stdout
    assert "OPEN_PORTS" in result.stdout


def test_cli_exit_parse_config_good_and_bad(conf: Path) -> None:
    assert fwknopd("--exit-parse-config", *conf_args(conf)).returncode == 0
    (conf / "access.conf").write_text("SOURCE ANY\nKEY __CHANGEME__\n")
    bad = fwknopd("--exit-parse-config", *conf_args(conf))
    assert bad.returncode == 1
    assert f"{conf / 'access.conf'}:2" in bad.stderr and "KEY" in bad.stderr
    (conf / "access.conf").write_text(f"SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {KEY}\n")
    same = fwknopd("--exit-parse-config", *conf_args(conf))
    assert same.returncode == 1 and "should not be identical" in same.stderr


def test_cli_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    result = fwknopd("--exit-parse-config", "-c", str(tmp_path / "nope.conf"))
    assert result.returncode == 1 and "nope.conf" in result.stderr


def test_cli_unsupported_capture_filter_is_refused(conf: Path) -> None:
    result = fwknopd("-f", "-t", "-P", "udp portrange 1-5", *conf_args(conf))
    assert result.returncode == 1
    assert "udp portrange 1-5" in result.stderr and "udp port N" in result.stderr


def test_cli_status_without_daemon(conf: Path) -> None:
    result = fwknopd("-S", *conf_args(conf))
    assert result.returncode == 1 and "No running fwknopd detected." in result.stdout


def test_cli_pcap_file_test_mode(conf: Path, suite_dir: Path) -> None:
    access = ("SOURCE ANY\nKEY_BASE64 wzNP62oPPgEc+kXDPQLHPOayQBuNbYUTPP+QrErNDmg=\n"
              "HMAC_KEY_BASE64 Yh+xizBnl6FotC5ec7FanVGClRMlsOAPh2u6eovnerfBVKwaVKzjGoblFMHMc593"
              "TNyi0dWn4opLoTIV9q/ttg==\nFW_ACCESS_TIMEOUT 3\n")
    (conf / "access.conf").write_text(access)
    result = fwknopd("-f", "-t", "--pcap-file", str(suite_dir / "fcs_spa.pcap"),
                     *conf_args(conf))
    assert result.returncode == 0, result.stderr
    assert "--test mode enabled, skipping firewall manipulation." in result.stderr
    assert not (conf / "digest.cache").exists()


def test_cli_pcap_file_vvv_dissects_frames(conf: Path, suite_dir: Path) -> None:
    access = ("SOURCE ANY\nKEY_BASE64 wzNP62oPPgEc+kXDPQLHPOayQBuNbYUTPP+QrErNDmg=\n"
              "HMAC_KEY_BASE64 Yh+xizBnl6FotC5ec7FanVGClRMlsOAPh2u6eovnerfBVKwaVKzjGoblFMHMc593"
              "TNyi0dWn4opLoTIV9q/ttg==\n")
    (conf / "access.conf").write_text(access)
    result = fwknopd("-f", "-t", "-vvv", "--pcap-file", str(suite_dir / "fcs_spa.pcap"),
                     *conf_args(conf))
    assert result.returncode == 0, result.stderr
    assert "Frame dissection:" in result.stderr and "###[ UDP ]###" in result.stderr
    assert "payload (225 bytes):" in result.stderr and "0x0000:" in result.stderr


def test_cli_exit_parse_config_checks_the_capture_filter(conf: Path) -> None:
    (conf / "fwknopd.conf").write_text("PCAP_FILTER icmp;\n")
    result = fwknopd("--exit-parse-config", *conf_args(conf))
    assert result.returncode == 1 and "PCAP_FILTER" in result.stderr


def test_cli_control_commands_work_with_a_broken_access_file(conf: Path) -> None:
    (conf / "access.conf").write_text("SOURCE ANY\nKEY __CHANGEME__\n")
    result = fwknopd("-S", *conf_args(conf))
    assert "No running fwknopd detected." in result.stdout


def test_cli_kill_never_signals_an_unrelated_process(conf: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (conf / "fwknopd.pid").write_text(f"{sleeper.pid}\n")
        result = fwknopd("-K", *conf_args(conf))
        assert result.returncode == 1 and "No running fwknopd detected." in result.stdout
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


@requires_root
def test_cli_second_instance_is_refused_and_k_stops_the_first(conf: Path) -> None:
    """Inside a namespace of its own, so the UDP socket faces nothing else."""
    import time

    (conf / "fwknopd.conf").write_text("UDPSERV_PORT 62299;\n")
    with netns("cli") as ns:
        def in_ns(*args: str) -> subprocess.CompletedProcess[str]:
            return ns.run(sys.executable, "-m", "fwknopd_uci.server.cli", *args, check=False)

        first = ns.popen(sys.executable, "-m", "fwknopd_uci.server.cli", "-f", "-t", "-U",
                         *conf_args(conf), stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 15
            while in_ns("-S", *conf_args(conf)).returncode != 0:
                assert time.monotonic() < deadline, "the first daemon did not start"
                time.sleep(0.1)
            second = in_ns("-f", "-t", "-U", *conf_args(conf))
            assert second.returncode == 1 and "already running" in second.stderr
            assert in_ns("-K", *conf_args(conf)).returncode == 0
            assert first.wait(timeout=10) == 0
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
