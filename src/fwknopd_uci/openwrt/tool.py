# `fwknopd-uci`: what the init script, the uci-defaults script and the user
# call to drive fwknopd from /etc/config/fwknopd.
#
#   fwknopd-uci [--root DIR] generate        write /var/etc/fwknop/{fwknopd,access}.conf
#   fwknopd-uci [--root DIR] plan            generate, then say what procd should run
#   fwknopd-uci [--root DIR] keys-init       real keys in place of placeholders
#   fwknopd-uci [--root DIR] wan-device [NETWORK]   the L3 device of NETWORK (wan)
#   fwknopd-uci [--root DIR] qr [SECTION_REF]       the Fwknop2 QR text(s)
#
# Exit codes: 0 success, 1 error (plan: STATE=error), 2 usage. Messages go to
# stderr as `fwknopd-uci: <what>`; `plan` prints KEY=VALUE lines on stdout
# whose values are limited to [A-Za-z0-9_./@:-], so the init script can read
# them with `while IFS='=' read -r k v` and a `case`, never `eval`.
#
# --root DIR puts every path under DIR (the UCI file, /etc/fwknop/,
# /var/etc/fwknop/, the ubus socket), for tests and image builds; paths
# printed by `plan` and shown in messages are the router's, without DIR.
#
# plan, as the shipped init script (openwrt.md 1.4, 1.6) with its faults fixed:
# * uci_enabled on: generate; `network.network` wins over `config.PCAP_INTF`
#   (with a warning when both are set); PCAP_INTF alone is sniffed untracked
#   (NETWORK empty); neither means network `wan`. The device of a network is
#   netifd's l3_device (pppoe-wan on PPPoE); while it is down, dialling or not
#   configured: STATE=wait and one line on stderr, never a crash loop.
# * uci_enabled off: fwknopd runs on /etc/fwknop/fwknopd.conf and the access
#   file it names, both parsed by the daemon's own parsers first: a missing
#   file or a placeholder key is STATE=error with the parser's message. The
#   device is that file's PCAP_INTF as the parser reads it (`eth1;` is eth1,
#   bug 21925), else the l3_device of `wan`, and then NETWORK=wan so procd
#   also restarts fwknopd when the WAN comes back (the shipped script left it
#   untracked).
# * UDP_PORT=<UDPSERV_PORT> only with ENABLE_UDP_SERVER, so the firewall can
#   open it.
#
# Invariants: generate and plan only read /etc/config/fwknopd and never write
# /etc/fwknop/; a refused configuration leaves the generated files as they were.

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ..config import ConfigError, ServerConfig, parse_access_conf, parse_server_conf
from ..config.errors import shown
from .generate import ACCESS_NAME, SERVER_NAME, GenerateError, generate, read_settings
from .keys import init_keys_file
from .qr import qr_text, qr_warnings
from .uci import UciError, UciPackage, UciSection, load
from .validate import section_ref
from .wan import WanStatus, resolve_network

__all__ = ["Paths", "Plan", "build_parser", "main", "make_plan", "plan_lines"]

PROG: Final = "fwknopd-uci"
UCI_CONFIG: Final = "/etc/config/fwknopd"
GENERATED_DIR: Final = "/var/etc/fwknop"
USER_DIR: Final = "/etc/fwknop"
UBUS_SOCKET: Final = "/var/run/ubus/ubus.sock"
DEFAULT_NETWORK: Final = "wan"
#: What a plan value may contain (no shell or IFS surprises).
SAFE_VALUE: Final = re.compile(r"[A-Za-z0-9_./@:-]*")

Resolver = Callable[[str, str | None], WanStatus]


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


@dataclass(frozen=True)
class Paths:
    """The router's paths, placed under ``root``."""

    root: Path

    def under(self, router_path: str) -> Path:
        """``router_path`` (absolute, as on the router) below the root."""
        return self.root / router_path.lstrip("/")

    def shown(self, path: str | Path) -> str:
        """A path below the root as the router sees it (for messages)."""
        text = str(path)
        base = str(self.root)
        if base not in ("", "/") and (text == base or text.startswith(base.rstrip("/") + "/")):
            return "/" + text[len(base.rstrip("/")):].lstrip("/")
        return text

    @property
    def uci(self) -> Path:
        return self.under(UCI_CONFIG)

    @property
    def socket(self) -> str | None:
        """The ubus socket; None (the client's default) only for the real
        root when the usual socket is absent (older OpenWrt)."""
        path = self.under(UBUS_SOCKET)
        if str(self.root) == "/" and not path.exists():
            return None
        return str(path)


class _Failed(Exception):
    """A command failed with one message (printed as `fwknopd-uci: ...`)."""


def _load_uci(paths: Paths) -> UciPackage | None:
    """/etc/config/fwknopd, or None when there is none."""
    path = paths.uci
    if not path.exists():
        return None
    try:
        return load(path)
    except UciError as exc:
        line = f":{exc.line}" if exc.line is not None else ""
        raise _Failed(f"{UCI_CONFIG}{line}: {exc.message}") from None
    except OSError as exc:
        raise _Failed(f"cannot read {UCI_CONFIG}: {exc.strerror or exc}") from None


def _config_error(paths: Paths, exc: ConfigError) -> str:
    return str(ConfigError(paths.shown(exc.path), exc.line, exc.variable, exc.message))


# --- generate -----------------------------------------------------------------------------


def _write_generated(paths: Paths, pkg: UciPackage) -> ServerConfig:
    """generate() into /var/etc/fwknop; GenerateError passes, OSError -> _Failed."""
    try:
        return generate(pkg, paths.under(GENERATED_DIR)).server
    except OSError as exc:
        raise _Failed(f"cannot write {GENERATED_DIR}: {exc.strerror or exc}") from None


def cmd_generate(paths: Paths) -> int:
    pkg = _load_uci(paths)
    if pkg is None:
        return 0
    settings = read_settings(pkg)
    for warning in settings.warnings:
        _say(f"warning: {warning}")
    if not settings.enabled:
        return 0
    try:
        _write_generated(paths, pkg)
    except GenerateError as exc:
        for error in exc.errors:
            _say(str(error))
        return 1
    return 0


# --- plan ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """What procd should run (see the module header)."""

    state: str = "error"
    device: str = ""
    network: str = ""
    config: str = ""
    access: str = ""
    udp_port: int | None = None
    message: str = ""
    warnings: list[str] = field(default_factory=list)


def _plan_uci(paths: Paths, pkg: UciPackage, plan: Plan) -> ServerConfig:
    settings = read_settings(pkg)
    plan.config = f"{GENERATED_DIR}/{SERVER_NAME}"
    plan.access = f"{GENERATED_DIR}/{ACCESS_NAME}"
    if settings.network is not None:
        plan.network = settings.network
    try:
        server = _write_generated(paths, pkg)
    except GenerateError as exc:
        more = len(exc.errors) - 1
        tail = f" (and {more} more: run '{PROG} generate' to see all)" if more else ""
        raise _Failed(f"{exc.errors[0]}{tail}") from None
    if not plan.network and "PCAP_INTF" in server.explicit:
        plan.device = server.pcap_intf  # untracked, as in the shipped script
    return server


def _plan_files(paths: Paths, plan: Plan) -> ServerConfig:
    config = f"{USER_DIR}/{SERVER_NAME}"
    plan.config = config
    hint = "; UCI control is off (global.uci_enabled), so fwknopd runs on /etc/fwknop/"
    try:
        server, _ = parse_server_conf(paths.under(config))
        access = server.access_folder or server.access_file
        plan.access = access
        parse_access_conf(paths.under(access), server_config=server)
    except ConfigError as exc:
        raise _Failed(_config_error(paths, exc) + hint) from None
    if "PCAP_INTF" in server.explicit:
        plan.device = server.pcap_intf
    else:
        plan.network = DEFAULT_NETWORK  # track it, so a WAN reconnect restarts fwknopd
    return server


def make_plan(paths: Paths, resolve: Resolver | None = None) -> Plan:
    """Generate (when UCI control is on), check, and find the device.

    Args:
        paths: where the router's files are.
        resolve: ``(network, socket) -> WanStatus``; resolve_network by default.
    """
    plan = Plan()
    try:
        pkg = _load_uci(paths)
        settings = read_settings(pkg) if pkg is not None else None
        if settings is not None:
            plan.warnings.extend(settings.warnings)
        if pkg is not None and settings is not None and settings.enabled:
            server = _plan_uci(paths, pkg, plan)
        else:
            server = _plan_files(paths, plan)
    except _Failed as exc:
        plan.message = str(exc)
        return plan
    if server.enable_udp_server:
        plan.udp_port = server.udpserv_port
    if not plan.device:
        # Neither a network nor PCAP_INTF: network wan, like the shipped script.
        plan.network = plan.network or DEFAULT_NETWORK
        status = (resolve or resolve_network)(plan.network, paths.socket)
        if status.state != "up" or status.device is None:
            plan.state = "wait"
            plan.message = f"waiting for network '{shown(plan.network)}' to come up " \
                           f"({status.reason})"
            return plan
        plan.device = status.device
    plan.state = "run"
    return plan


def plan_lines(plan: Plan) -> list[str]:
    """The KEY=VALUE lines of a plan; an unsafe value turns it into an error."""
    values: list[tuple[str, str]] = []
    if plan.state == "run":
        values.append(("DEVICE", plan.device))
    values += [("NETWORK", plan.network), ("CONFIG", plan.config), ("ACCESS", plan.access)]
    if plan.udp_port is not None:
        values.append(("UDP_PORT", str(plan.udp_port)))
    for key, value in values:
        if SAFE_VALUE.fullmatch(value) is None:
            plan.state = "error"
            plan.message = f"{key} '{shown(value)}' has characters the init script cannot " \
                           "take safely (only A-Z a-z 0-9 _ . / @ : -)"
            return ["STATE=error"]
    return [f"STATE={plan.state}", *(f"{key}={value}" for key, value in values)]


def cmd_plan(paths: Paths) -> int:
    plan = make_plan(paths)
    lines = plan_lines(plan)
    if plan.state == "run":
        for warning in plan.warnings:
            _say(f"warning: {warning}")
    else:
        _say(plan.message)
    print("\n".join(lines))
    return 1 if plan.state == "error" else 0


# --- keys-init, wan-device, qr ------------------------------------------------------------


def cmd_keys_init(paths: Paths) -> int:
    try:
        init_keys_file(paths.uci)
    except UciError as exc:
        line = f":{exc.line}" if exc.line is not None else ""
        raise _Failed(f"{UCI_CONFIG}{line}: {exc.message}") from None
    except OSError as exc:
        raise _Failed(f"cannot update {UCI_CONFIG}: {exc.strerror or exc}") from None
    return 0


def cmd_wan_device(paths: Paths, network: str) -> int:
    status = resolve_network(network, paths.socket)
    if status.device is None:
        raise _Failed(f"no device for network '{shown(network)}': {status.reason}")
    print(status.device)
    return 0


def _find_access(pkg: UciPackage, ref: str) -> UciSection:
    wanted = ref.removeprefix("fwknopd.") if ref.startswith("fwknopd.") else ref
    try:
        section = pkg.find(wanted)
    except KeyError:
        raise _Failed(f"no section '{shown(ref)}' in {UCI_CONFIG}") from None
    if section.type != "access":
        raise _Failed(f"'{shown(ref)}' is not an access section of {UCI_CONFIG}")
    return section


def cmd_qr(paths: Paths, ref: str | None) -> int:
    pkg = _load_uci(paths)
    if pkg is None:
        raise _Failed(f"{UCI_CONFIG} was not found")
    sections = [_find_access(pkg, ref)] if ref is not None else pkg.sections_of("access")
    texts: list[str] = []
    for section in sections:
        text = qr_text(section)
        if not text:
            continue
        for warning in qr_warnings(section):
            _say(f"warning: {section_ref(pkg, section)}.{warning}")
        texts.append(text)
    if not texts:
        where = f"'{shown(ref)}' has" if ref is not None else "no access section has"
        raise _Failed(f"{where} keys (run '{PROG} keys-init' to generate them)")
    print("\n".join(texts))
    return 0


# --- command line -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (``--root`` is accepted before or after the command)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Drive fwknopd from /etc/config/fwknopd (OpenWrt UCI).",
        epilog="plan prints STATE=run|wait|error, DEVICE= (run only), NETWORK=, CONFIG=, "
               "ACCESS= and UDP_PORT= (UDP server only); wait/error reasons go to stderr. "
               "Exit codes: 0 ok (plan: run or wait), 1 error, 2 usage.")
    parser.add_argument("--root", default="/", metavar="DIR",
                        help="treat DIR as / for every path (default /)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=argparse.SUPPRESS, metavar="DIR", help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("generate", parents=[common],
                   help="write /var/etc/fwknop/fwknopd.conf and access.conf from UCI")
    sub.add_parser("plan", parents=[common],
                   help="generate, then print STATE/DEVICE/NETWORK/CONFIG/ACCESS for procd")
    sub.add_parser("keys-init", parents=[common],
                   help="generate keys for access sections with missing or placeholder keys")
    wan = sub.add_parser("wan-device", parents=[common],
                         help="print the L3 device of a logical network")
    wan.add_argument("network", nargs="?", default=DEFAULT_NETWORK, metavar="NETWORK",
                     help=f"logical network (default {DEFAULT_NETWORK})")
    qr = sub.add_parser("qr", parents=[common],
                        help="print the Fwknop2 QR text of the access sections")
    qr.add_argument("ref", nargs="?", metavar="SECTION_REF",
                    help="one access section, e.g. @access[0] or its name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 error, 2 usage)."""
    args = build_parser().parse_args(argv)
    paths = Paths(Path(args.root))
    try:
        if args.command == "generate":
            return cmd_generate(paths)
        if args.command == "plan":
            return cmd_plan(paths)
        if args.command == "keys-init":
            return cmd_keys_init(paths)
        if args.command == "wan-device":
            return cmd_wan_device(paths, args.network)
        return cmd_qr(paths, args.ref)
    except _Failed as exc:
        _say(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
