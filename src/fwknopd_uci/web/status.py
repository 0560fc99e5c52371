# The status panel: does fwknopd run, which device does it sniff, which
# grants are open now.
#
# Strategy: read what the system already says instead of asking the daemon.
# - running: the daemon's pid file (FWKNOP_PID_FILE, else FWKNOP_RUN_DIR/
#   fwknopd.pid, else /var/run/fwknop/fwknopd.pid) names a process whose
#   command line mentions fwknopd;
# - device: that process's `-i DEV` argument (what procd started it with);
#   with no daemon, the device the init script would pick: network.network
#   resolved through netifd (wan.py), else config.PCAP_INTF, else `wan`;
# - grants: the firewall backend's list_grants() (nftables set elements with
#   their remaining seconds).
# Every collaborator is injectable (the firewall factory, the network
# resolver, the /proc directory); the tests pass fakes.
#
# Invariants: SystemStatus.status never raises for a missing file, process,
# firewall or ubus; the panel says what it could not find out.

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from ..firewall import ActiveGrant, FirewallError, NftablesFirewall
from ..openwrt.generate import read_settings
from ..openwrt.uci import UciPackage
from ..openwrt.validate import validate_option, value_text
from ..openwrt.wan import WanStatus
from .i18n import _

__all__ = ["DaemonStatus", "GrantLister", "StatusSource", "SystemStatus", "nftables_lister"]

log = logging.getLogger(__name__)

DEFAULT_PID_FILE: Final = "/var/run/fwknop/fwknopd.pid"
DEFAULT_NFT: Final = (("inet", "fw4"), "input", "fwknopd_allow4")
_MAX_SMALL_FILE: Final = 64 * 1024  # a pid file or a command line


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    """What the status panel shows.

    Attributes:
        running: a fwknopd process is alive.
        pid: its process id, or None.
        device: the device it sniffs (or would sniff), or None.
        device_note: where ``device`` comes from, or why there is none.
        grants: the open grants, or None when they could not be read.
        grants_note: why the grants could not be read ("" when they were).
    """

    running: bool
    pid: int | None
    device: str | None
    device_note: str
    grants: tuple[ActiveGrant, ...] | None
    grants_note: str = ""


class StatusSource(Protocol):
    """Where the page gets its status panel from."""

    def status(self, pkg: UciPackage) -> DaemonStatus:
        """The status, given the UCI configuration as saved."""
        ...


class GrantLister(Protocol):
    """The part of a firewall backend the panel uses."""

    def list_grants(self) -> list[ActiveGrant]:
        """The open grants (raises FirewallError when they cannot be read)."""
        ...

    def close(self) -> None:
        """Release the backend."""
        ...


FirewallFactory = Callable[[tuple[str, str], str, str], GrantLister]
Resolver = Callable[[str], WanStatus]


def nftables_lister(table: tuple[str, str], chain: str, set_name: str) -> GrantLister:
    """The real backend: the daemon's nftables set."""
    return NftablesFirewall(table, chain, set_name)


def _config_option(pkg: UciPackage, name: str) -> str | None:
    """The last valid, non-empty value of a `config` option."""
    found = None
    for section in pkg.sections_of("config"):
        value = section.options.get(name)
        if value is None:
            continue
        text = value_text(value)
        if text and validate_option("config", name, text) is None:
            found = text
    return found


def _read_small(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(_MAX_SMALL_FILE)
    except OSError:
        return None


def _interface_arg(argv: list[str]) -> str | None:
    for index, arg in enumerate(argv):
        if arg in ("-i", "--interface") and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--interface="):
            return arg.partition("=")[2]
    return None


class SystemStatus:
    """The status of the fwknopd on this system, under ``root``.

    Args:
        root: the file system root the pid file is looked up in.
        firewall: makes the grant lister from (table, chain, set); None
            leaves the grants out (shown as not read).
        resolve: a logical network -> its L3 device (wan.resolve_network);
            None leaves the expected device out.
        proc: the /proc directory.
    """

    def __init__(self, root: Path, *, firewall: FirewallFactory | None = nftables_lister,
                 resolve: Resolver | None = None, proc: Path = Path("/proc")) -> None:
        self._root = root
        self._firewall = firewall
        self._resolve = resolve
        self._proc = proc

    def status(self, pkg: UciPackage) -> DaemonStatus:
        pid, argv = self._process(pkg)
        grants, grants_note = self._grants(pkg)
        if pid is not None:
            device = _interface_arg(argv)
            note = _("as the running fwknopd was started") if device else \
                _("the running fwknopd was started without -i")
            return DaemonStatus(True, pid, device, note, grants, grants_note)
        device, note = self._expected_device(pkg)
        return DaemonStatus(False, None, device, note, grants, grants_note)

    def _pid_file(self, pkg: UciPackage) -> Path:
        path = _config_option(pkg, "FWKNOP_PID_FILE")
        if path is None:
            run_dir = _config_option(pkg, "FWKNOP_RUN_DIR")
            path = f"{run_dir.rstrip('/')}/fwknopd.pid" if run_dir else DEFAULT_PID_FILE
        return self._root / path.lstrip("/")

    def _process(self, pkg: UciPackage) -> tuple[int | None, list[str]]:
        raw = _read_small(self._pid_file(pkg))
        if raw is None:
            return None, []
        words = raw.split()
        if not words or not words[0].isdigit() or len(words[0]) > 10:
            return None, []
        pid = int(words[0])
        cmdline = _read_small(self._proc / str(pid) / "cmdline")
        if not cmdline:
            return None, []
        argv = [arg.decode("utf-8", "replace") for arg in cmdline.rstrip(b"\0").split(b"\0")]
        if not any("fwknopd" in arg for arg in argv[:3]):
            return None, []  # a stale pid file; the number belongs to another process now
        return pid, argv

    def _expected_device(self, pkg: UciPackage) -> tuple[str | None, str]:
        settings = read_settings(pkg)
        if not settings.enabled:
            return None, _("UCI control is off: fwknopd uses /etc/fwknop/fwknopd.conf")
        if settings.network is None and settings.pcap_intf is not None:
            return settings.pcap_intf, _("config.PCAP_INTF (not running)")
        network = settings.network or "wan"
        if self._resolve is None:
            return None, _("network '%(network)s' (not running)") % {"network": network}
        wan = self._resolve(network)
        if wan.device is not None:
            return wan.device, _("network '%(network)s' (not running)") % {"network": network}
        return None, _("network '%(network)s': %(reason)s") % {"network": network,
                                                              "reason": wan.reason}

    def _grants(self, pkg: UciPackage) -> tuple[tuple[ActiveGrant, ...] | None, str]:
        if self._firewall is None:
            return None, _("this server does not read the firewall")
        (family, table), chain, set_name = DEFAULT_NFT
        table_text = _config_option(pkg, "NFT_TABLE")
        if table_text is not None:
            family, table = table_text.split()
        chain = _config_option(pkg, "NFT_CHAIN") or chain
        set_name = _config_option(pkg, "NFT_SET") or set_name
        try:
            lister = self._firewall((family, table), chain, set_name)
        except (FirewallError, OSError) as exc:
            return None, str(exc)
        try:
            return tuple(lister.list_grants()), ""
        except (FirewallError, OSError) as exc:
            log.debug("status: cannot list grants: %s", exc)
            return None, str(exc)
        finally:
            lister.close()
