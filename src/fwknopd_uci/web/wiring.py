# The settings page wired to a router's file system: the real paths under a
# root, and the real collaborators (ubus, nftables) or none of them.
#
# cgi.py uses root `/` with rpcd sessions and the system's ubus; the
# standalone server (__main__) uses a scratch root with the stand-in session
# store, and asks ubus (netifd's interface list, the WAN device) only through
# a socket under that root, never the system's. Without ubus the page shows
# a free-text network field and no expected device.

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from ..openwrt.wan import WanStatus, resolve_network
from .app import DEFAULT_RELOAD, SettingsApp, WebConfig
from .netifd import Networks, list_networks
from .session import SessionChecker
from .status import SystemStatus, nftables_lister

__all__ = ["SECRET_PATH", "STANDIN_PATH", "UBUS_SOCKET", "UCI_PATH", "router_app"]

UCI_PATH: Final = "/etc/config/fwknopd"
SECRET_PATH: Final = "/etc/fwknopd-uci-web.secret"
STANDIN_PATH: Final = "/var/run/rpcd-standin.json"
UBUS_SOCKET: Final = "/var/run/ubus/ubus.sock"


def under(root: Path, router_path: str) -> Path:
    """``router_path`` (absolute, as on the router) below ``root``."""
    return root / router_path.lstrip("/")


def ubus_socket(root: Path) -> str | None:
    """The ubus socket under ``root`` if it exists, else None."""
    path = under(root, UBUS_SOCKET)
    return str(path) if path.exists() else None


def router_app(root: Path, sessions: SessionChecker, *,
               reload_command: Sequence[str] = DEFAULT_RELOAD, firewall: bool = True,
               ubus: bool = True, socket: str | None = None) -> SettingsApp:
    """The app for the router whose file system is at ``root``.

    Args:
        root: ``/`` on the router; a scratch directory for the standalone
            server.
        sessions: who may see and change the settings.
        reload_command: what Save & Apply runs.
        firewall: read the open grants from nftables for the status panel.
        ubus: ask netifd for the network list and the WAN device.
        socket: the ubus socket for that; None for the client's default.
    """
    def networks() -> Networks | None:
        return list_networks(socket) if ubus else None

    def resolve(network: str) -> WanStatus:
        if not ubus:
            return WanStatus(network, "unavailable", None, "no ubus here")
        return resolve_network(network, socket)

    status = SystemStatus(root, firewall=nftables_lister if firewall else None, resolve=resolve)
    return SettingsApp(WebConfig(
        uci_path=under(root, UCI_PATH), secret_path=under(root, SECRET_PATH),
        sessions=sessions, reload_command=tuple(reload_command), status=status,
        networks=networks))
