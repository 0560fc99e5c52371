# `fwknopd-uci` end to end (openwrt/tool.py), run as a child process on a
# scratch root (--root), with the ubus stand-in first on PATH: the command
# contract the init script and the uci-defaults script rely on, and the
# reports of openwrt.md that must not come back.

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
STANDINS = TESTS / "standins"
DATA = TESTS / "data" / "openwrt"
REPLIES = DATA / "ubus"
SHIPPED = TESTS.parents[1] / "shared" / "vectors" / "uci-configs" / "net_fwknop_files_fwknopd"
KEY = "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc="
HMAC = ("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1"
        "lqQXuQ==")
PLAN_LINE = re.compile(r"(STATE|DEVICE|NETWORK|CONFIG|ACCESS|UDP_PORT)=[A-Za-z0-9_./@:-]*")


def tool(root: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = path if path is not None else f"{STANDINS}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run([sys.executable, "-m", "fwknopd_uci.openwrt.tool", "--root", str(root),
                           *args], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def plan(root: Path, path: str | None = None) -> tuple[dict[str, str], list[str], int]:
    done = tool(root, "plan", path=path)
    lines = done.stdout.splitlines()
    for line in lines:
        assert PLAN_LINE.fullmatch(line), line
    assert lines and lines[0].startswith("STATE=")
    values = dict(line.split("=", 1) for line in lines)
    return values, done.stderr.splitlines(), done.returncode


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "root"
    (base / "etc" / "config").mkdir(parents=True)
    (base / "var" / "run" / "ubus").mkdir(parents=True)
    return base


def uci(root: Path, fixture: str | None = None, text: str | None = None) -> Path:
    target = root / "etc" / "config" / "fwknopd"
    if fixture is not None:
        shutil.copyfile(DATA / fixture, target)
    else:
        target.write_text(text or "")
    return target


def wan(root: Path, fixture: str, *, network: str = "wan", device: str | None = None) -> None:
    """netifd's status of ``network`` for the stand-in, optionally another device."""
    data = json.loads((REPLIES / fixture).read_text())
    if device is not None:
        data["l3_device"] = data["device"] = device
    reply = root / "var" / "run" / "ubus" / f"network.interface.{network}.json"
    reply.write_text(json.dumps(data))


def user_files(root: Path, server: str, access: str) -> Path:
    folder = root / "etc" / "fwknop"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fwknopd.conf").write_text(server)
    (folder / "access.conf").write_text(access)
    for name in ("fwknopd.conf", "access.conf"):
        (folder / name).chmod(0o600)
    return folder


GOOD_ACCESS = f"SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HMAC}\nOPEN_PORTS tcp/22\n"


def generated(root: Path, name: str) -> Path:
    return root / "var" / "etc" / "fwknop" / name


# --- the reports of openwrt.md ------------------------------------------------------------


def test_tool_pcap_intf_eth1_without_network(root: Path) -> None:
    """uci_enabled '1', config.PCAP_INTF 'eth1', no network option: eth1 is
    sniffed although wan is something else, and the UCI file stays as it was."""
    config = uci(root, "pcap-intf.uci")
    before = config.read_bytes()
    wan(root, "wan-pppoe.json")
    values, errors, code = plan(root)
    assert code == 0 and errors == []
    assert values == {"STATE": "run", "DEVICE": "eth1", "NETWORK": "",
                      "CONFIG": "/var/etc/fwknop/fwknopd.conf",
                      "ACCESS": "/var/etc/fwknop/access.conf"}
    assert "PCAP_INTF eth1" in generated(root, "fwknopd.conf").read_text().splitlines()
    for _ in range(3):
        assert tool(root, "generate").returncode == 0
        plan(root)
    assert config.read_bytes() == before


def test_tool_network_wan_on_pppoe(root: Path) -> None:
    """network 'wan' on PPPoE over wan.7: the device is pppoe-wan."""
    uci(root, "network-wan.uci")
    wan(root, "wan-pppoe.json")
    values, errors, code = plan(root)
    assert (code, errors) == (0, [])
    assert (values["STATE"], values["DEVICE"], values["NETWORK"]) == ("run", "pppoe-wan", "wan")


def test_tool_network_wan_while_dialling_waits(root: Path) -> None:
    """While PPPoE dials: STATE=wait and one "waiting for wan" line, exit 0
    (no instance, no crash loop; the interface trigger starts it later)."""
    uci(root, "network-wan.uci")
    wan(root, "wan-pppoe-pending.json")
    values, errors, code = plan(root)
    assert code == 0
    assert values == {"STATE": "wait", "NETWORK": "wan",
                      "CONFIG": "/var/etc/fwknop/fwknopd.conf",
                      "ACCESS": "/var/etc/fwknop/access.conf"}
    assert len(errors) == 1
    assert errors[0].startswith("fwknopd-uci: waiting for network 'wan' to come up")


@pytest.mark.parametrize(("reply", "words"), [
    ("wan-down.json", "down"), (None, "no interface 'wan'"),
])
def test_tool_wan_down_or_missing_waits(root: Path, reply: str | None, words: str) -> None:
    uci(root, "network-wan.uci")
    if reply is not None:
        wan(root, reply)
    values, errors, code = plan(root)
    assert (values["STATE"], code, len(errors)) == ("wait", 0, 1)
    assert words in errors[0]


def test_tool_uci_off_no_pcap_intf_uses_wan_device(root: Path) -> None:
    """uci_enabled off, /etc/fwknop/fwknopd.conf without PCAP_INTF, WAN on
    eth1.2: fwknopd sniffs eth1.2 (not eth0) and procd tracks wan."""
    uci(root, text="config global\n\nconfig access\n\toption SOURCE 'ANY'\n")
    user_files(root, "ENABLE_NAT_DNS Y\n", GOOD_ACCESS)
    wan(root, "wan-dhcp.json", device="eth1.2")
    values, errors, code = plan(root)
    assert (code, errors) == (0, [])
    assert values == {"STATE": "run", "DEVICE": "eth1.2", "NETWORK": "wan",
                      "CONFIG": "/etc/fwknop/fwknopd.conf",
                      "ACCESS": "/etc/fwknop/access.conf"}
    assert not generated(root, "fwknopd.conf").exists()


def test_tool_uci_off_pcap_intf_with_semicolon(root: Path) -> None:
    """`PCAP_INTF eth1;` is eth1 (the shipped script's sed kept the ';', #21925)."""
    user_files(root, "PCAP_INTF eth1;\n", GOOD_ACCESS)
    wan(root, "wan-dhcp.json")
    values, _, code = plan(root)
    assert (code, values["STATE"], values["DEVICE"], values["NETWORK"]) == (0, "run", "eth1", "")


def test_tool_two_access_sections(root: Path) -> None:
    uci(root, "two-access.uci")
    assert tool(root, "generate").returncode == 0
    lines = [line for line in generated(root, "access.conf").read_text().splitlines()
             if line.startswith(("SOURCE", "OPEN_PORTS"))]
    assert lines == ["SOURCE 198.51.100.0/24", "OPEN_PORTS tcp/22", "SOURCE ANY",
                     "OPEN_PORTS udp/1194"]


def test_tool_keytype_leftover(root: Path) -> None:
    uci(root, "keytype.uci")
    wan(root, "wan-dhcp.json")
    assert plan(root)[0]["STATE"] == "run"
    text = generated(root, "access.conf").read_text()
    assert "keytype" not in text
    assert {f"KEY_BASE64 {KEY}", f"HMAC_KEY_BASE64 {HMAC}"} <= set(text.splitlines())
    done = tool(root, "qr")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"KEY_BASE64:{KEY} HMAC_KEY_BASE64:{HMAC}\n"


@pytest.fixture
def shipped(root: Path) -> Path:
    if not SHIPPED.is_file():
        pytest.skip(f"shipped default config not found at {SHIPPED}")
    target = root / "etc" / "config" / "fwknopd"
    shutil.copyfile(SHIPPED, target)
    return target


def test_tool_shipped_default_keys_init_is_silent(root: Path, shipped: Path) -> None:
    done = tool(root, "keys-init")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    text = shipped.read_text()
    assert "__CHANGEME__" not in text and "KEY_BASE64" in text and "HMAC_KEY_BASE64" in text
    first = shipped.read_bytes()
    again = tool(root, "keys-init")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    assert shipped.read_bytes() == first


def test_tool_shipped_default_without_etc_fwknop_is_one_clear_error(root: Path,
                                                                  shipped: Path) -> None:
    wan(root, "wan-dhcp.json")
    values, errors, code = plan(root)
    assert (values["STATE"], code, len(errors)) == ("error", 1, 1)
    assert "/etc/fwknop/fwknopd.conf" in errors[0] and "not found" in errors[0]
    assert str(root) not in errors[0]  # the router's path, not the scratch one


def test_tool_shipped_default_with_placeholder_files_is_one_clear_error(
        root: Path, shipped: Path) -> None:
    """uci_enabled unset and the upstream sample files still holding
    __CHANGEME__: the shipped init script made fwknopd exit and respawn."""
    user_files(root, "PCAP_INTF eth0\n",
               "SOURCE ANY\nKEY_BASE64 __CHANGEME__\nHMAC_KEY_BASE64 __CHANGEME__\n")
    assert tool(root, "keys-init").returncode == 0  # UCI only; the files stay
    values, errors, code = plan(root)
    assert (values["STATE"], code, len(errors)) == ("error", 1, 1)
    assert "__CHANGEME__" in errors[0] and "/etc/fwknop/access.conf" in errors[0]


def test_tool_shipped_default_uci_on_needs_keys_init(root: Path, shipped: Path) -> None:
    text = shipped.read_text()
    shipped.write_text(text.replace("#\toption uci_enabled", "\toption uci_enabled"))
    wan(root, "wan-dhcp.json")
    values, errors, code = plan(root)
    assert (values["STATE"], code, len(errors)) == ("error", 1, 1)
    assert "placeholder" in errors[0] and "keys-init" in errors[0]
    assert tool(root, "keys-init").returncode == 0
    values, errors, code = plan(root)
    assert (values["STATE"], values["DEVICE"], values["NETWORK"], code) == ("run", "wan", "wan",
                                                                            0)


def test_tool_injected_newline_refused(root: Path) -> None:
    """`option OPEN_PORTS "tcp/22<newline>ENABLE_CMD_EXEC Y"`: refused, with a
    clear message, and the previously generated files stay as they were."""
    uci(root, "two-access.uci")
    assert tool(root, "generate").returncode == 0
    old = {name: generated(root, name).read_bytes() for name in ("fwknopd.conf", "access.conf")}
    uci(root, "injection.uci")
    done = tool(root, "generate")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("fwknopd-uci: @access[0].OPEN_PORTS: contains a line break; a value "
                           "must be one line (it would add lines to the generated "
                           "configuration)\n")
    values, errors, code = plan(root)
    assert (values["STATE"], code, len(errors)) == ("error", 1, 1)
    assert {name: generated(root, name).read_bytes() for name in old} == old
    assert "ENABLE_CMD_EXEC" not in old["access.conf"].decode()


# --- the contract -------------------------------------------------------------------------


def test_tool_generate_files_and_modes(root: Path) -> None:
    uci(root, "two-access.uci")
    done = tool(root, "generate")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    folder = root / "var" / "etc" / "fwknop"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == ["access.conf", "fwknopd.conf"]
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_tool_generate_uci_off_writes_nothing(root: Path) -> None:
    uci(root, text="config global\n\toption uci_enabled '0'\nconfig access\n\toption SOURCE 'x'\n")
    folder = user_files(root, "PCAP_INTF eth0\n", GOOD_ACCESS)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    done = tool(root, "generate")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not (root / "var" / "etc").exists()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_tool_generate_never_touches_etc_fwknop(root: Path) -> None:
    uci(root, "two-access.uci")
    folder = user_files(root, "PCAP_INTF eth0\n", GOOD_ACCESS)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert tool(root, "generate").returncode == 0
    plan(root)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_tool_generate_lists_every_error(root: Path) -> None:
    uci(root, text=f"""
config global
	option uci_enabled '1'
config access
	option SOURCE 'ANY'
	option KEY_BASE64 '{KEY}'
config access
	option SOURCE 'ANY'
	option KEY_BASE64 '{KEY}'
	option OPEN_PORTS 'tcp/99999'
	option FW_ACCESS_TIMEOUT 'soon'
""")
    done = tool(root, "generate")
    assert done.returncode == 1
    assert [line.split(":")[1].strip() for line in done.stderr.splitlines()] == [
        "@access[1].OPEN_PORTS", "@access[1].FW_ACCESS_TIMEOUT"]
    values, errors, _ = plan(root)
    assert values["STATE"] == "error" and len(errors) == 1 and "and 1 more" in errors[0]


def test_tool_plan_network_wins_over_pcap_intf(root: Path) -> None:
    uci(root, text=f"""
config global
	option uci_enabled '1'
config network
	option network 'wan'
config access
	option SOURCE 'ANY'
	option KEY_BASE64 '{KEY}'
config config
	option PCAP_INTF 'eth9'
""")
    wan(root, "wan-pppoe.json")
    values, errors, code = plan(root)
    assert (values["STATE"], values["DEVICE"], values["NETWORK"], code) == ("run", "pppoe-wan",
                                                                            "wan", 0)
    assert len(errors) == 1 and "warning" in errors[0] and "precedence" in errors[0]


def test_tool_plan_neither_network_nor_pcap_intf_means_wan(root: Path) -> None:
    uci(root, text=f"config global\n\toption uci_enabled 'yes'\nconfig access\n"
                   f"\toption SOURCE 'ANY'\n\toption KEY_BASE64 '{KEY}'\n")
    wan(root, "wan-dhcp.json", device="eth0.2")
    values, _, _ = plan(root)
    assert (values["STATE"], values["DEVICE"], values["NETWORK"]) == ("run", "eth0.2", "wan")


def test_tool_plan_other_network(root: Path) -> None:
    uci(root, text=f"config global\n\toption uci_enabled '1'\nconfig network\n"
                   f"\toption network 'wwan'\nconfig access\n\toption SOURCE 'ANY'\n"
                   f"\toption KEY_BASE64 '{KEY}'\n")
    wan(root, "wan-dhcp.json", network="wwan", device="wwan0")
    values, _, _ = plan(root)
    assert (values["DEVICE"], values["NETWORK"]) == ("wwan0", "wwan")


def test_tool_plan_udp_port(root: Path) -> None:
    uci(root, text=f"config global\n\toption uci_enabled '1'\nconfig access\n"
                   f"\toption SOURCE 'ANY'\n\toption KEY_BASE64 '{KEY}'\nconfig config\n"
                   "\toption ENABLE_UDP_SERVER 'Y'\n\toption UDPSERV_PORT '40001'\n")
    wan(root, "wan-dhcp.json")
    values, _, _ = plan(root)
    assert values["UDP_PORT"] == "40001"
    uci(root, "pcap-intf.uci")
    assert "UDP_PORT" not in plan(root)[0]


def test_tool_plan_unsafe_device_is_an_error(root: Path) -> None:
    user_files(root, "PCAP_INTF eth1$(reboot)\n", GOOD_ACCESS)
    done = tool(root, "plan")
    assert done.returncode == 1 and done.stdout == "STATE=error\n"
    assert len(done.stderr.splitlines()) == 1 and "DEVICE" in done.stderr


def test_tool_plan_without_ubus_waits(root: Path) -> None:
    uci(root, "network-wan.uci")
    values, errors, code = plan(root, path=str(root / "no-bin"))
    assert (values["STATE"], code, len(errors)) == ("wait", 0, 1)
    assert "cannot ask netifd" in errors[0]


def test_tool_plan_broken_uci_file(root: Path) -> None:
    uci(root, text="config global\n\toption uci_enabled '1\n")
    values, errors, code = plan(root)
    assert (values["STATE"], code, len(errors)) == ("error", 1, 1)
    assert errors[0].startswith("fwknopd-uci: /etc/config/fwknopd:")


def test_tool_plan_without_uci_file(root: Path) -> None:
    (root / "etc" / "config").rmdir()
    user_files(root, "PCAP_INTF eth1\n", GOOD_ACCESS)
    values, _, code = plan(root)
    assert (values["STATE"], values["DEVICE"], code) == ("run", "eth1", 0)


def test_tool_keys_init_never_touches_real_keys(root: Path) -> None:
    config = uci(root, "two-access.uci")
    before = config.read_bytes()
    done = tool(root, "keys-init")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert config.read_bytes() == before


def test_tool_keys_init_without_config_and_broken_config(root: Path) -> None:
    assert tool(root, "keys-init").returncode == 0
    uci(root, text="config 'access\n")
    done = tool(root, "keys-init")
    assert done.returncode == 1 and done.stderr.startswith("fwknopd-uci: /etc/config/fwknopd:")


def test_tool_wan_device(root: Path) -> None:
    wan(root, "wan-pppoe.json")
    wan(root, "wan-dhcp.json", network="wan6", device="wan")
    done = tool(root, "wan-device")
    assert (done.returncode, done.stdout, done.stderr) == (0, "pppoe-wan\n", "")
    assert tool(root, "wan-device", "wan6").stdout == "wan\n"
    missing = tool(root, "wan-device", "lan")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr == "fwknopd-uci: no device for network 'lan': netifd has no " \
                             "interface 'lan'\n"
    wan(root, "wan-pppoe-pending.json")
    assert tool(root, "wan-device").returncode == 1


def test_tool_qr(root: Path) -> None:
    uci(root, "two-access.uci")
    done = tool(root, "qr")
    key2 = "c2Vjb25kIGtleSBvZiB0aGlydHktdHdvIGJ5dGVzIQ=="
    hmac2 = "aG1hYyBrZXkgbnVtYmVyIHR3bywgYSBiaXQgbG9uZ2VyIHRoYW4gdGhlIGZpcnN0IG9uZQ=="
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines() == [f"KEY_BASE64:{KEY} HMAC_KEY_BASE64:{HMAC}",
                                        f"KEY_BASE64:{key2} HMAC_KEY_BASE64:{hmac2}"]
    assert tool(root, "qr", "@access[1]").stdout == f"KEY_BASE64:{key2} HMAC_KEY_BASE64:{hmac2}\n"
    assert tool(root, "qr", "fwknopd.@access[0]").stdout.startswith(f"KEY_BASE64:{KEY} ")
    for ref in ("@access[5]", "nosuch", "@config[0]"):
        failed = tool(root, "qr", ref)
        assert failed.returncode == 1 and failed.stdout == "" and ref in failed.stderr


def test_tool_qr_plain_key_warning_and_no_keys(root: Path) -> None:
    uci(root, text="config access 'phone'\n\toption SOURCE 'ANY'\n\toption KEY 'my pass'\n"
                   "config access\n\toption SOURCE 'ANY'\n\toption KEY '__CHANGEME__'\n")
    done = tool(root, "qr")
    assert done.returncode == 0 and done.stdout == "KEY:my pass\n"
    assert done.stderr.startswith("fwknopd-uci: warning: phone.KEY contains a space or ':'")
    failed = tool(root, "qr", "@access[1]")
    assert failed.returncode == 1 and "keys-init" in failed.stderr


def test_tool_usage_errors_exit_2(root: Path) -> None:
    assert tool(root).returncode == 2
    assert tool(root, "frobnicate").returncode == 2
    assert tool(root, "qr", "a", "b").returncode == 2


def test_tool_root_after_the_command(root: Path, tmp_path: Path) -> None:
    uci(root, "pcap-intf.uci")
    env = dict(os.environ, PATH=f"{STANDINS}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run([sys.executable, "-m", "fwknopd_uci.openwrt.tool", "plan", "--root",
                           str(root)], capture_output=True, text=True, env=env, timeout=60,
                          check=False, cwd=tmp_path)
    assert done.stdout.splitlines()[:2] == ["STATE=run", "DEVICE=eth1"]


def test_tool_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "fwknopd-uci"
    if not script.exists():
        pytest.skip("fwknopd-uci is not installed in this environment (pip install -e .)")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0
    for command in ("generate", "plan", "keys-init", "wan-device", "qr"):
        assert command in done.stdout
