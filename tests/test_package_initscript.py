# The package's procd init script (files/etc/init.d/fwknopd), run in `sh`.
#
# The script is sourced by tests/standins/rc.common, a stand-in for
# OpenWrt's /etc/rc.common, together with recording stand-ins for the
# procd_* and json_* helpers (tests/standins/procd.sh) and for `logger`;
# they append every call to a log that this module turns back into the
# service procd would get: instances (command, respawn, netdev, file, data),
# triggers, log lines, firewall change events. Below the script everything
# is real: the real fwknopd-uci tool (through the package's own wrapper,
# files/usr/bin/fwknopd-uci) runs with --root on a scratch root holding
# /etc/config/fwknopd, /etc/fwknop/ and the ubus replies, which the ubus
# stand-in (tests/standins/ubus) serves as netifd would. procd, ubus and
# syslog are the stand-ins, at the boundary openwrt.md section 5 documents.

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
STANDINS = TESTS / "standins"
UBUS_REPLIES = TESTS / "data" / "openwrt" / "ubus"
INIT_SCRIPT = REPO / "files" / "etc" / "init.d" / "fwknopd"
UCI_DEFAULTS = REPO / "files" / "etc" / "uci-defaults" / "90_fwknopd"
TOOL_WRAPPER = REPO / "files" / "usr" / "bin" / "fwknopd-uci"
SEP = "\x1f"  # field separator of the stand-ins' log
RUN_TIMEOUT = 60  # seconds for one rc.common action (each runs the tool once)

KEY = "wzNP62oPPgEc+kXDPQLHPOayQBuNbYUTPP+QrThn3Wc="
HMAC = "Yz5JAbWu8JKPrHDHYVKOeWhmVUzEEMhydgZV9aBbMtfQ/J7Qp2p1kkiYy/MPEU5S8j5Dh0ny4J9U42ujK7eZXg=="
OTHER_KEY = "Aq4x8lJd0pQ6m2v7XwZcUeNbRkYoTsHfGiLrMnPyBj0="
GENERATED = ("/var/etc/fwknop/fwknopd.conf", "/var/etc/fwknop/access.conf")
USER_FILES = ("/etc/fwknop/fwknopd.conf", "/etc/fwknop/access.conf")
UCI_CONFIG = "/etc/config/fwknopd"
PROG = ["/usr/sbin/fwknopd", "--foreground", "--syslog-enable"]
WAN_ETH1_2 = {"up": True, "pending": False, "available": True, "autostart": True,
              "dynamic": False, "uptime": 42, "l3_device": "eth1.2", "proto": "dhcp",
              "device": "eth1.2", "data": {}}


def uci_config(*, enabled: bool = True, network: str | None = None,
               pcap_intf: str | None = None, key: str = KEY, extra: str = "") -> str:
    """An /etc/config/fwknopd in the shipped layout."""
    lines = ["config global"]
    if enabled:
        lines.append("\toption uci_enabled '1'")
    lines += ["", "config network"]
    if network is not None:
        lines.append(f"\toption network '{network}'")
    lines += ["", "config access", "\toption SOURCE 'ANY'", f"\toption KEY_BASE64 '{key}'",
              f"\toption HMAC_KEY_BASE64 '{HMAC}'", "", "config config"]
    if pcap_intf is not None:
        lines.append(f"\toption PCAP_INTF '{pcap_intf}'")
    return "\n".join(lines) + "\n" + extra


@dataclass
class Instance:
    """One procd instance as the script defined it."""

    params: dict[str, list[str]] = field(default_factory=dict)
    data: dict[str, Any] | None = None

    @property
    def command(self) -> list[str]:
        return self.params["command"]


@dataclass
class Service:
    """What one rc.common action sent (or would have sent) to procd."""

    returncode: int
    stderr: str
    instances: list[Instance] = field(default_factory=list)
    triggers: list[tuple[str, ...]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)  # (priority, message)
    config_changed: list[str] = field(default_factory=list)
    killed: bool = False
    start_status: int | None = None


class _JsonBuilder:
    """Rebuilds the JSON the json_* calls between procd_open/close_data make."""

    def __init__(self) -> None:
        self.root: dict[str, Any] = {}
        self._stack: list[dict[str, Any] | list[Any]] = [self.root]

    def _put(self, name: str, value: Any) -> None:
        top = self._stack[-1]
        if isinstance(top, list):
            top.append(value)
        else:
            top[name] = value

    def call(self, name: str, args: list[str]) -> None:
        if name in ("json_add_array", "json_add_object"):
            child: dict[str, Any] | list[Any] = [] if name == "json_add_array" else {}
            self._put(args[0] if args else "", child)
            self._stack.append(child)
        elif name in ("json_close_array", "json_close_object"):
            self._stack.pop()
        elif name == "json_add_string":
            self._put(args[0], args[1])
        elif name == "json_add_int":
            self._put(args[0], int(args[1]))
        elif name == "json_add_boolean":
            self._put(args[0], args[1] == "1")
        else:
            raise AssertionError(f"unexpected call in procd data: {name}")


def parse_log(text: str, returncode: int, stderr: str) -> Service:
    service = Service(returncode, stderr)
    current: Instance | None = None
    data: _JsonBuilder | None = None
    for line in text.splitlines():
        name, *args = line.split(SEP)
        if name.startswith("json_"):
            assert data is not None, f"{name} outside procd_open_data"
            data.call(name, args)
        elif name == "procd_open_instance":
            current = Instance()
        elif name in ("procd_set_param", "procd_append_param"):
            assert current is not None, f"{name} outside an instance"
            kind, *values = args
            if name == "procd_set_param":
                current.params[kind] = values
            else:
                current.params.setdefault(kind, []).extend(values)
        elif name == "procd_open_data":
            data = _JsonBuilder()
        elif name == "procd_close_data":
            assert current is not None and data is not None
            current.data = data.root
            data = None
        elif name == "procd_close_instance":
            assert current is not None
            service.instances.append(current)
            current = None
        elif name == "procd_add_reload_trigger":
            service.triggers.append(("config", *args))
        elif name == "procd_add_reload_interface_trigger":
            service.triggers.append(("interface", *args))
        elif name == "procd_set_config_changed":
            service.config_changed.extend(args)
        elif name == "procd_kill":
            service.killed = True
        elif name == "start_service_returned":
            service.start_status = int(args[0])
        elif name == "logger":
            service.logs.append(_logger_line(args))
    assert current is None and data is None, "an instance or data block was left open"
    return service


def _logger_line(args: list[str]) -> tuple[str, str]:
    priority, words = "user.notice", list(args)
    message: list[str] = []
    while words:
        word = words.pop(0)
        if word == "-p":
            priority = words.pop(0)
        elif word == "-t":
            assert words.pop(0) == "fwknopd"
        elif word != "-s":
            message.append(word)
    return priority, " ".join(message)


class Router:
    """A scratch root for the tool, and the script run against it."""

    def __init__(self, root: Path, tool: Path) -> None:
        self.root = root
        self.tool = tool
        for sub in ("etc/config", "var/run/ubus"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.log = root.parent / "standin.log"

    def path(self, router_path: str) -> Path:
        return self.root / router_path.lstrip("/")

    def write(self, router_path: str, text: str, mode: int = 0o600) -> None:
        path = self.path(router_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)

    def network(self, name: str, status: str | dict[str, Any] | None) -> None:
        """netifd's status reply for network NAME: a fixture file, a dict, or none."""
        reply = self.path(f"/var/run/ubus/network.interface.{name}.json")
        if status is None:
            reply.unlink(missing_ok=True)
        elif isinstance(status, str):
            shutil.copyfile(UBUS_REPLIES / status, reply)
        else:
            reply.write_text(json.dumps(status))

    def rc(self, action: str, *, tool: Path | None = None) -> Service:
        """`/etc/init.d/fwknopd ACTION` under the stand-ins."""
        self.log.write_text("")
        env = {**os.environ, "STANDIN_LOG": str(self.log),
               "FWKNOPD_UCI": str(tool or self.tool), "FWKNOPD_ROOT": str(self.root),
               "PATH": f"{STANDINS}{os.pathsep}{os.environ.get('PATH', '')}"}
        done = subprocess.run(["sh", str(STANDINS / "rc.common"), str(INIT_SCRIPT), action],
                              env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                              stdin=subprocess.DEVNULL, check=False)
        return parse_log(self.log.read_text(), done.returncode, done.stderr)

    def md5s(self, instance: Instance) -> dict[str, str]:
        """What procd compares on reload: the md5 of every `file` of the instance."""
        return {f: hashlib.md5(self.path(f).read_bytes()).hexdigest()
                for f in instance.params["file"]}


@pytest.fixture
def router(tmp_path: Path) -> Router:
    # The real tool through the package's wrapper, with this venv's python.
    tool = tmp_path / "fwknopd-uci"
    tool.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{TOOL_WRAPPER}" "$@"\n')
    tool.chmod(0o755)
    return Router(tmp_path / "root", tool)


def only_instance(service: Service) -> Instance:
    assert service.returncode == 0, service.stderr
    assert service.start_status == 0
    (instance,) = service.instances
    return instance


def test_initscript_pcap_intf_without_network(router: Router) -> None:
    """uci_enabled, PCAP_INTF eth1, no network: sniff eth1, untracked (no interface trigger).

    procd and ubus are stand-ins at the documented boundary; the tool is real.
    """
    router.write(UCI_CONFIG, uci_config(pcap_intf="eth1"), 0o644)
    service = router.rc("start")
    instance = only_instance(service)
    assert instance.command == [*PROG, "-i", "eth1", "-c", GENERATED[0], "-a", GENERATED[1]]
    assert instance.params["respawn"] == []
    assert instance.params["netdev"] == ["eth1"]
    assert instance.params["file"] == [*GENERATED, UCI_CONFIG]
    assert instance.data is None
    assert "stdout" not in instance.params and "stderr" not in instance.params
    assert service.triggers == [("config", "fwknopd")]
    assert service.logs == [] and service.stderr == ""
    assert service.config_changed == []
    for generated in GENERATED:
        assert router.path(generated).stat().st_mode & 0o777 == 0o600


def test_initscript_network_wan_on_pppoe(router: Router) -> None:
    """network 'wan' on PPPoE: sniff pppoe-wan (the L3 device), netdev, interface trigger.

    procd and ubus are stand-ins at the documented boundary; the tool is real.
    """
    router.write(UCI_CONFIG, uci_config(network="wan"))
    router.network("wan", "wan-pppoe.json")
    service = router.rc("start")
    instance = only_instance(service)
    assert instance.command == [*PROG, "-i", "pppoe-wan", "-c", GENERATED[0],
                                "-a", GENERATED[1]]
    assert instance.params["netdev"] == ["pppoe-wan"]
    assert service.triggers == [("config", "fwknopd"), ("interface", "wan")]
    assert service.logs == []


def test_initscript_network_and_pcap_intf_logs_the_warning(router: Router) -> None:
    """Both set: the network wins and the tool's warning reaches syslog once.

    procd, ubus and logger are stand-ins at the documented boundary.
    """
    router.write(UCI_CONFIG, uci_config(network="wan", pcap_intf="eth0"))
    router.network("wan", "wan-dhcp.json")
    service = router.rc("start")
    assert only_instance(service).params["netdev"] == ["wan"]
    ((priority, message),) = service.logs
    assert priority == "daemon.warn"
    assert "PCAP_INTF" in message and "ignored" in message


def test_initscript_wan_pending_waits_then_starts_on_the_trigger(router: Router) -> None:
    """PPPoE still dialling: no instance, one notice, and the interface trigger is set.

    When netifd reports the interface up, the trigger's reload defines the
    instance. procd and ubus are stand-ins at the documented boundary.
    """
    router.write(UCI_CONFIG, uci_config(network="wan"))
    router.network("wan", "wan-pppoe-pending.json")
    service = router.rc("start")
    assert service.returncode == 0 and service.start_status == 0
    assert service.instances == []
    ((priority, message),) = service.logs
    assert priority == "daemon.notice"
    assert "waiting for network 'wan'" in message
    assert service.triggers == [("config", "fwknopd"), ("interface", "wan")]

    router.network("wan", "wan-pppoe.json")  # interface.update -> reload
    service = router.rc("reload")
    assert only_instance(service).params["netdev"] == ["pppoe-wan"]
    assert service.logs == []


def test_initscript_uci_off_runs_on_etc_fwknop_with_the_wan_device(router: Router) -> None:
    """uci_enabled off, /etc/fwknop/fwknopd.conf without PCAP_INTF: wan's device eth1.2.

    The user's files are watched, and wan is tracked (the C package left it
    untracked). procd and ubus are stand-ins at the documented boundary.
    """
    router.write(UCI_CONFIG, uci_config(enabled=False, pcap_intf="eth9"))
    router.write(USER_FILES[0], "MAX_SPA_PACKET_AGE 120;\n")
    router.write(USER_FILES[1], f"SOURCE ANY\nKEY_BASE64 {KEY}\nHMAC_KEY_BASE64 {HMAC}\n")
    router.network("wan", WAN_ETH1_2)
    service = router.rc("start")
    instance = only_instance(service)
    assert instance.command == [*PROG, "-i", "eth1.2", "-c", USER_FILES[0],
                                "-a", USER_FILES[1]]
    assert instance.params["file"] == [*USER_FILES, UCI_CONFIG]
    assert service.triggers == [("config", "fwknopd"), ("interface", "wan")]
    assert not router.path(GENERATED[0]).exists()


@pytest.mark.parametrize("case", ["missing files", "placeholder keys"])
def test_initscript_uci_off_bad_files_is_one_error(router: Router, case: str) -> None:
    """uci off and /etc/fwknop unusable: no instance, one daemon.err line, non-zero.

    Never a respawn loop. procd and logger are stand-ins at the documented
    boundary.
    """
    router.write(UCI_CONFIG, uci_config(enabled=False))
    router.network("wan", "wan-dhcp.json")
    if case == "placeholder keys":
        router.write(USER_FILES[0], "PCAP_INTF eth0;\n")
        router.write(USER_FILES[1], "SOURCE ANY\nKEY __CHANGEME__\nHMAC_KEY __CHANGEME__\n")
    service = router.rc("start")
    assert service.instances == []
    assert service.returncode != 0 and service.start_status != 0
    ((priority, message),) = service.logs
    assert priority == "daemon.err"
    assert "/etc/fwknop/" in message and message.endswith("; fwknopd not started")
    assert "\n" not in message and str(router.root) not in message
    assert service.stderr == ""
    assert service.triggers == [("config", "fwknopd")]  # a fix + uci commit retries


def test_initscript_udp_server_publishes_a_firewall_rule(router: Router) -> None:
    """ENABLE_UDP_SERVER: the instance carries fw4 service data opening UDPSERV_PORT.

    fw4 is told to reload when the published port changes (start, mode off,
    stop), not on a reload that changes nothing. procd is a stand-in at the
    documented boundary.
    """
    udp = "\toption ENABLE_UDP_SERVER 'Y'\n\toption UDPSERV_PORT '62202'\n"
    router.write(UCI_CONFIG, uci_config(pcap_intf="eth1", extra=udp))
    service = router.rc("start")
    instance = only_instance(service)
    assert instance.data == {"firewall": [{
        "type": "rule", "name": "Allow-fwknopd-UDP", "src": "wan", "family": "ipv4",
        "proto": "udp", "dest_port": "62202", "target": "ACCEPT"}]}
    assert service.config_changed == ["firewall"]

    assert router.rc("reload").config_changed == []
    assert router.rc("stop").config_changed == ["firewall"]
    assert router.rc("start").config_changed == ["firewall"]

    router.write(UCI_CONFIG, uci_config(pcap_intf="eth1"))
    service = router.rc("reload")
    assert only_instance(service).data is None
    assert service.config_changed == ["firewall"]


def test_initscript_changed_key_restarts_on_reload(router: Router) -> None:
    """`uci set ...KEY_BASE64; uci commit` then reload: same command line, new md5s.

    procd restarts an instance on reload only if its definition differs;
    the command line is the same, so it is the `file` md5s that make the new
    key take effect (the C package's script kept the old one). procd is a
    stand-in at the documented boundary.
    """
    router.write(UCI_CONFIG, uci_config(pcap_intf="eth1"))
    first = only_instance(router.rc("start"))
    before = router.md5s(first)
    router.write(UCI_CONFIG, uci_config(pcap_intf="eth1", key=OTHER_KEY))
    second = only_instance(router.rc("reload"))
    assert second.params == first.params
    after = router.md5s(second)
    changed = {f for f in before if before[f] != after[f]}
    assert changed == {GENERATED[1], UCI_CONFIG}
    assert OTHER_KEY in router.path(GENERATED[1]).read_text()


def test_initscript_restart_and_reload_leave_the_uci_file_alone(router: Router) -> None:
    """/etc/config/fwknopd is byte-identical after start, reload and restart.

    restart is stop (procd kills the instance) then start. procd is a
    stand-in at the documented boundary.
    """
    router.write(UCI_CONFIG, uci_config(network="wan"))
    router.network("wan", "wan-dhcp.json")
    original = router.path(UCI_CONFIG).read_bytes()
    only_instance(router.rc("start"))
    only_instance(router.rc("reload"))
    service = router.rc("restart")
    assert service.killed
    assert only_instance(service).params["netdev"] == ["wan"]
    assert router.path(UCI_CONFIG).read_bytes() == original


def _fake_tool(router: Router, body: str) -> Path:
    tool = router.root.parent / "broken-tool"
    tool.write_text(f"#!/bin/sh\n{body}\n")
    tool.chmod(0o755)
    return tool


def test_initscript_rejects_unsafe_plan_values(router: Router) -> None:
    """A plan value outside [A-Za-z0-9_./@:-] is an error, never a command argument.

    The broken tool is a stand-in written here; procd is a stand-in.
    """
    tool = _fake_tool(router, "printf 'STATE=run\\nDEVICE=eth0;reboot\\n'\nexit 0")
    service = router.rc("start", tool=tool)
    assert service.instances == []
    ((priority, message),) = service.logs
    assert priority == "daemon.err" and "unsafe" in message
    assert service.returncode != 0


def test_initscript_crashing_tool_gives_its_last_line(router: Router) -> None:
    """A tool that dies (traceback, no STATE): one error line, its last stderr line.

    The broken tool is a stand-in written here; procd is a stand-in.
    """
    tool = _fake_tool(router, "echo 'Traceback (most recent call last):' >&2\n"
                              "echo 'ModuleNotFoundError: No module named x' >&2\nexit 1")
    service = router.rc("start", tool=tool)
    assert service.instances == []
    message = "ModuleNotFoundError: No module named x; fwknopd not started"
    assert service.logs == [("daemon.err", message)]


@pytest.mark.parametrize("script", [INIT_SCRIPT, UCI_DEFAULTS], ids=lambda p: p.name)
def test_initscript_shellcheck_clean(script: Path) -> None:
    """shellcheck -s sh finds nothing in the init script and the uci-defaults script."""
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed")
    done = subprocess.run([shellcheck, "-s", "sh", str(script)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_initscript_is_tab_indented_busybox_sh() -> None:
    """OpenWrt style: the rc.common shebang, tabs, no bashisms shellcheck lets through."""
    text = INIT_SCRIPT.read_text()
    assert text.startswith("#!/bin/sh /etc/rc.common\n")
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert not [line for line in body if line.startswith(" ")]
    assert "eval" not in text.replace("never `eval`", "")
    assert max(len(line.expandtabs(4)) for line in text.splitlines()) <= 100
