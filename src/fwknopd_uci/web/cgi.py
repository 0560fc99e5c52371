# The uhttpd CGI entry: /www/cgi-bin/fwknopd-settings runs main().
#
# The same WSGI app as the standalone server, on the router's own paths
# (root `/`), with sessions checked by rpcd over ubus and the grants read
# from nftables. uhttpd passes the request in the CGI environment; wsgiref's
# CGIHandler turns it into a WSGI call and writes the response (with a
# Status: line) to stdout. Log lines go to stderr, which uhttpd sends to
# syslog.

from __future__ import annotations

import logging
import sys
from pathlib import Path
from wsgiref.handlers import CGIHandler

from .app import SettingsApp
from .session import RpcdSessions
from .wiring import router_app, ubus_socket

__all__ = ["build_app", "main"]


def build_app(root: Path = Path("/")) -> SettingsApp:
    """The router's app: rpcd sessions through the system's ubus socket."""
    # Without the usual socket (older OpenWrt) the ubus client's default is used.
    socket = ubus_socket(root)
    return router_app(root, RpcdSessions(socket), socket=socket)


def main() -> None:
    """Answer the one request of this CGI process."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="fwknopd-settings: %(levelname)s: %(message)s")
    CGIHandler().run(build_app())


if __name__ == "__main__":
    main()
