# The standalone settings server, for development and the browser tests:
#
#   python -m fwknopd_uci.web --root DIR [--listen 127.0.0.1:PORT]
#                             [--reload-command CMD...]
#
# Serves the same WSGI app as the CGI, on loopback only (any other address
# is refused: the page holds the keys, and outside LuCI it has no TLS).
# Paths are under DIR: the UCI file DIR/etc/config/fwknopd, the CSRF secret
# DIR/etc/fwknopd-uci-web.secret, and the stand-in for rpcd's sessions
# DIR/var/run/rpcd-standin.json (session.StandinSessions). Port 0 picks a
# free port; the first line on stdout is `Settings page: http://HOST:PORT/`.
# --reload-command takes the rest of the command line as the argv that
# Save & Apply runs (default: /etc/init.d/fwknopd reload).
# Exit codes: 0 after SIGINT/SIGTERM, 2 for a bad command line.

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from socketserver import ThreadingMixIn
from types import FrameType
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .app import DEFAULT_RELOAD
from .session import StandinSessions
from .wiring import STANDIN_PATH, router_app, ubus_socket, under

__all__ = ["build_parser", "main", "parse_listen"]

PROG = "python -m fwknopd_uci.web"


class _Server(ThreadingMixIn, WSGIServer):
    # A browser may hold an idle connection open; one thread per request
    # keeps the page answering meanwhile.
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        logging.getLogger("fwknopd_uci.web.server").info("%s %s", self.address_string(),
                                                        format % args)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port), loopback only.

    Raises:
        ValueError: not an IP address and port, or not a loopback address.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"'{text}' is not HOST:PORT (e.g. 127.0.0.1:8080; port 0 picks one)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"'{host}' is not an IP address; give a loopback address such as "
                         "127.0.0.1") from None
    if not address.is_loopback:
        raise ValueError(f"{host} is not a loopback address: the settings page serves on "
                         "loopback only (127.0.0.0/8 or ::1)")
    return str(address), int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=(
        "Serve the fwknopd settings page on loopback, with the files of a router under "
        "--root and a stand-in for rpcd's sessions."))
    parser.add_argument("--root", required=True, type=Path,
                        help="the router's file system (DIR/etc/config/fwknopd, ...)")
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="loopback address and port (default 127.0.0.1:0, a free port)")
    parser.add_argument("--reload-command", nargs=argparse.REMAINDER, metavar="CMD",
                        help="the argv Save & Apply runs; takes the rest of the line "
                             f"(default: {' '.join(DEFAULT_RELOAD)})")
    return parser


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        parser.error(str(exc))
    if args.reload_command is not None and not args.reload_command:
        parser.error("--reload-command needs a command")
    root: Path = args.root.resolve()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="fwknopd-uci-web: %(levelname)s: %(message)s")
    socket_path = ubus_socket(root)
    app = router_app(root, StandinSessions(under(root, STANDIN_PATH)),
                     reload_command=args.reload_command or DEFAULT_RELOAD,
                     firewall=str(root) == "/", ubus=socket_path is not None, socket=socket_path)
    server_class = _Server6 if ":" in host else _Server
    try:
        server = make_server(host, port, app, server_class=server_class,
                             handler_class=_Handler)
    except OSError as exc:
        print(f"{PROG}: cannot listen on {args.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    bound = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"Settings page: http://{shown}:{bound}/", flush=True)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
