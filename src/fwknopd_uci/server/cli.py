# `fwknopd`: the command line of the C daemon (spa-protocol.md 10), so
# `fwknopd -f -v -i eth0` and init scripts written for it work unchanged.
#
# Order, as the reference: -V / -h / key generation first (then exit), then
# the config files (-c, -O), then the remaining options override them.
# Exit codes: 0 success, 1 configuration or start-up error.

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..config import ConfigError, ServerConfig, dump_config, parse_access_conf, parse_server_conf
from ..firewall import NO_EXPIRY, FirewallError, NftablesFirewall
from .daemon import Daemon, PacketSource, Runtime, settings_from_config
from .keygen import generate_keys, keygen_text, write_key_file
from .logs import setup_logging
from .replay import ReplayCache

__all__ = ["build_parser", "main"]

DEFAULT_CONFIG = "/etc/fwknop/fwknopd.conf"


class _HelpFormatter(argparse.HelpFormatter):
    # The default formatter imports shutil (with zlib, bz2 and lzma) only to
    # read the terminal width: 0.5 MB of the idle RSS budget. os gives the
    # same width.
    def __init__(self, prog: str) -> None:
        try:
            width = os.get_terminal_size(sys.stdout.fileno()).columns
        except (OSError, ValueError):
            width = 80
        super().__init__(prog, width=width - 2)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fwknopd", add_help=False, formatter_class=_HelpFormatter,
        description="Single Packet Authorization server (fwknop 2.x compatible), "
                    "granting access through nftables.")
    a = p.add_argument
    a("-h", "--help", action="help", help="show this help and exit")
    a("-V", "--version", action="store_true", help="print the version and exit")
    a("-c", "--config-file", metavar="FILE", help=f"main config file ({DEFAULT_CONFIG})")
    a("-O", "--override-config", metavar="FILE[,FILE]",
      help="extra config files parsed after the main one")
    a("-a", "--access-file", metavar="FILE", help="access.conf path")
    a("-f", "--foreground", action="store_true", help="stay in the foreground, log to stderr")
    a("-v", "--verbose", action="count", default=0, help="more log output (repeatable)")
    a("-i", "--interface", metavar="IF", help="interface to sniff (PCAP_INTF)")
    a("-P", "--pcap-filter", metavar="FILTER", help="capture filter (PCAP_FILTER)")
    a("--pcap-file", metavar="FILE", help="read packets from a pcap file, then exit")
    a("--pcap-any-direction", action="store_true",
      help="accepted for compatibility; only inbound packets are ever read")
    a("-U", "--udp-server", action="store_true", help="listen on a UDP socket instead of "
      "sniffing (ENABLE_UDP_SERVER)")
    a("-d", "--digest-file", metavar="FILE", help="replay cache file (DIGEST_FILE)")
    a("--rotate-digest-cache", action="store_true", help="rename the digest file to "
      "FILE-old at start")
    a("-p", "--pid-file", metavar="FILE", help="pid file (FWKNOP_PID_FILE)")
    a("-r", "--run-dir", metavar="DIR", help="run directory (FWKNOP_RUN_DIR)")
    a("-C", "--packet-limit", type=int, default=0, metavar="N",
      help="exit after N captured packets")
    a("-t", "--test", action="store_true", help="decide on packets but never touch the "
      "firewall and store no digests")
    a("-D", "--dump-config", action="store_true", help="print the effective configuration "
      "(keys masked) and exit")
    a("--exit-parse-config", action="store_true", help="check both config files and exit")
    a("-K", "--kill", action="store_true", help="stop the running fwknopd")
    a("-R", "--restart", action="store_true", help="make the running fwknopd reload")
    a("-S", "--status", action="store_true", help="report whether fwknopd is running")
    a("--fw-list", action="store_true", help="list the active grants and exit")
    a("--fw-list-all", action="store_true", help="same as --fw-list")
    a("--fw-flush", action="store_true", help="remove every active grant and exit")
    a("--key-gen", action="store_true", help="print a new KEY_BASE64 and HMAC_KEY_BASE64")
    a("--key-gen-file", metavar="FILE", help="write the generated keys to FILE (mode 0600)")
    a("--key-len", type=int, default=32, metavar="N", help="encryption key bytes (32)")
    a("--hmac-key-len", type=int, metavar="N", help="HMAC key bytes (by digest type)")
    a("--hmac-digest-type", default="sha256", metavar="TYPE",
      help="md5, sha1, sha256, sha384, sha512, sha3_256, sha3_512")
    a("--access-folder", metavar="DIR", help="parse every *.conf in DIR instead of the "
      "access file (ACCESS_FOLDER)")
    a("--syslog-enable", action="store_true", help="also log to syslog in the foreground")
    a("-l", "--locale", metavar="LOCALE", help="accepted for compatibility (ignored)")
    return p


PATH_OPTIONS = ("config_file", "access_file", "access_folder", "digest_file", "pid_file",
                "run_dir", "pcap_file", "key_gen_file")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The daemon chdirs to / when it detaches, and re-reads its files on
    # SIGHUP: relative paths must not change meaning.
    for name in PATH_OPTIONS:
        value = getattr(args, name)
        if value:
            setattr(args, name, os.path.abspath(value))
    if args.override_config:
        args.override_config = ",".join(os.path.abspath(p)
                                        for p in args.override_config.split(",") if p)
    if args.version:
        print(f"fwknopd server {__version__} (fwknopd-uci, fwknop 2.x protocol compatible)")
        return 0
    if args.key_gen or args.key_gen_file:
        return _key_gen(args)
    if sum(map(bool, (args.dump_config, args.kill, args.restart, args.status))) > 1:
        return _fail("-D, -K, -R and -S are mutually exclusive")
    # Commands that only need fwknopd.conf keep working while access.conf is
    # broken (so a bad edit never stops you from stopping the daemon).
    if args.kill or args.restart or args.status or args.fw_list or args.fw_list_all \
            or args.fw_flush:
        try:
            config, _ = load_server_config(args)
        except ConfigError as exc:
            return _fail(f"[*] Fatal: {exc}")
        if args.kill or args.restart or args.status:
            return _control(args, config)
        return _firewall_command(args, config)
    try:
        runtime, warnings = load_runtime(args)
    except ConfigError as exc:
        for warning in exc.warnings:
            print(warning, file=sys.stderr)
        return _fail(f"[*] Fatal: {exc}")
    except OSError as exc:
        return _fail(f"[*] Could not read the configuration: {exc}")
    config = runtime.config
    if args.dump_config:
        sys.stdout.write(dump_config(config, runtime.stanzas))
        return 0
    if args.exit_parse_config:
        for warning in warnings:
            print(warning, file=sys.stderr)
        print("Configuration is valid.", file=sys.stderr)
        return 0
    return _serve(args, runtime, warnings)


def load_server_config(args: argparse.Namespace) -> tuple[ServerConfig, list[str]]:
    """fwknopd.conf (+ -O files) with the command-line overrides applied."""
    pcap_mode = args.pcap_file is not None
    config, warnings = parse_server_conf(args.config_file or DEFAULT_CONFIG,
                                         pcap_file_mode=pcap_mode)
    for extra in filter(None, (args.override_config or "").split(",")):
        more, more_warnings = parse_server_conf(extra, pcap_file_mode=pcap_mode)
        config = config.with_values(**{k: v for k, v in more.values.items()
                                       if k in more.explicit})
        warnings += more_warnings
    overrides = {
        "PCAP_INTF": args.interface, "PCAP_FILTER": args.pcap_filter,
        "DIGEST_FILE": args.digest_file, "FWKNOP_PID_FILE": args.pid_file,
        "FWKNOP_RUN_DIR": args.run_dir, "ACCESS_FILE": args.access_file,
        "PCAP_FILE": args.pcap_file, "ENABLE_UDP_SERVER": "Y" if args.udp_server else None,
        "ACCESS_FOLDER": args.access_folder,
    }
    config = config.with_values(**{k: v for k, v in overrides.items() if v is not None})
    return config, warnings


def load_runtime(args: argparse.Namespace) -> tuple[Runtime, list[str]]:
    """Read fwknopd.conf (+ -O files) and access.conf, apply the options.

    Raises:
        ConfigError: anything the daemon could not run with, including a
            capture filter it cannot compile (checked here, so that
            --exit-parse-config and a SIGHUP reload see it too).
    """
    from ..capture import PacketFilter

    config, warnings = load_server_config(args)
    try:
        PacketFilter.parse(config.pcap_filter)
    except ValueError as exc:
        raise ConfigError(config.path, None, "PCAP_FILTER", str(exc)) from exc
    try:
        stanzas, access_warnings = parse_access_conf(config.access_folder or config.access_file,
                                                     server_config=config)
    except ConfigError as exc:
        exc.warnings = (*warnings, *exc.warnings)  # what fwknopd.conf said counts too
        raise
    warnings += access_warnings
    settings = settings_from_config(config, test_mode=args.test)
    return Runtime(config, tuple(stanzas), settings), warnings


def _serve(args: argparse.Namespace, runtime: Runtime, warnings: list[str]) -> int:
    config = runtime.config
    log = setup_logging(verbosity=args.verbose + config.verbose, to_stderr=args.foreground,
                        to_syslog=not args.foreground or args.syslog_enable,
                        identity=config.syslog_identity, facility=config.syslog_facility)
    for warning in warnings:
        log.warning("%s", warning)
    from ..capture import PacketFilter

    pfilter = PacketFilter.parse(config.pcap_filter)  # checked by load_runtime
    pid_file = Path(config.pid_file)
    lock_fd = _lock_pid_file(pid_file, log)
    if lock_fd is None:
        return 1
    replay = _open_replay(args, config, log)
    if replay is None:
        return 1
    firewall = None
    if not args.test:
        try:
            firewall = NftablesFirewall(config.nft_table, config.nft_chain, config.nft_set)
            firewall.start()
        except FirewallError as exc:
            return _fail(f"[*] Firewall: {exc}", log)
    family, table = config.nft_table
    daemon = Daemon(runtime, firewall, replay, log, reload=lambda: load_runtime(args),
                    firewall_label=f"{family} {table} set {config.nft_set}",
                    hexdump=args.verbose >= 3 and args.foreground)
    if args.verbose + config.verbose > 0:
        daemon.log_budget = None  # debugging: every line, as the C daemon
    try:
        if args.pcap_file:
            from ..capture import dissect, read_pcap

            def dump(linktype: int, frame: bytes) -> None:
                log.debug("Frame dissection:\n%s", dissect(linktype, frame).rstrip())

            log.info("Reading packets from pcap file: %s", args.pcap_file)
            try:
                packets = read_pcap(args.pcap_file, pfilter,
                                    on_frame=dump if args.verbose >= 3 else None)
            except ImportError as exc:
                return _fail(f"[*] --pcap-file needs scapy (pip install scapy): {exc}", log)
            return daemon.serve(packets, packet_limit=args.packet_limit)
        # Open the capture before detaching, so a wrong interface is reported
        # to whoever started us, not only to syslog.
        source = open_source(runtime, log)
        if not args.foreground:
            _daemonize()  # the flock on the pid file is inherited by the child
        os.ftruncate(lock_fd, 0)
        os.pwrite(lock_fd, f"{os.getpid()}\n".encode(), 0)
        return daemon.run(source, lambda rt: open_source(rt, log),
                          packet_limit=args.packet_limit)
    except OSError as exc:
        return _fail(f"[*] {exc}", log)
    finally:
        if firewall is not None:
            firewall.close()
        with contextlib.suppress(OSError):
            if _running_pid(pid_file) == os.getpid():
                pid_file.unlink()
        os.close(lock_fd)


def _lock_pid_file(path: Path, log: logging.Logger) -> int | None:
    """Open and flock the pid file: one daemon per pid file, or None."""
    import fcntl

    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        _fail(f"[*] Could not open pid file {path}: {exc}", log)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        pid = _running_pid(path)
        _fail(f"[*] fwknopd is already running (pid={pid}, pid file {path}).", log)
        return None
    return fd


def open_source(runtime: Runtime, log: logging.Logger) -> PacketSource:
    """The UDP server or the sniffer, as the configuration asks."""
    from ..capture import PacketFilter, Sniffer, UdpServer

    config = runtime.config
    if config.enable_udp_server:
        source: PacketSource = UdpServer(config.udpserv_port)
        log.info("Kicking off UDP server to listen on port %d.",
                             config.udpserv_port)
        return source
    pfilter = PacketFilter.parse(config.pcap_filter)
    source = Sniffer(config.pcap_intf, pfilter, promisc=config.enable_pcap_promisc)
    log.info("Sniffing interface: %s", config.pcap_intf)
    log.info("PCAP filter is: '%s'", config.pcap_filter)
    return source


def _open_replay(args: argparse.Namespace, config: ServerConfig,
                 log: logging.Logger) -> ReplayCache | None:
    """Load DIGEST_FILE; --test reads it but never writes it."""
    retention = ReplayCache.retention_for(config.enable_spa_packet_aging,
                                          config.max_spa_packet_age)
    if not config.enable_digest_persistence:
        log.warning("ENABLE_DIGEST_PERSISTENCE is off: replayed packets will NOT be detected.")
        return ReplayCache(None, retention=retention)
    path = Path(config.digest_file)
    cache = ReplayCache(path, retention=retention, read_only=args.test)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if args.rotate_digest_cache and path.exists() and not args.test:
            os.replace(path, f"{path}-old")
        for warning in cache.load(time.time()):
            log.warning("%s", warning)
        cache.check_writable()  # refuse to start rather than grant unrecorded knocks
    except OSError as exc:
        _fail(f"[*] Digest cache {path}: {exc}", log)
        return None
    log.info("Using Digest Cache: '%s' (entry count = %d)", path, len(cache))
    return cache


def _firewall_command(args: argparse.Namespace, config: ServerConfig) -> int:
    try:
        firewall = NftablesFirewall(config.nft_table, config.nft_chain, config.nft_set)
        try:
            if args.fw_flush:
                firewall.flush()
                print(f"Removed every grant from {config.nft_set}.")
                return 0
            grants = firewall.list_grants()
        finally:
            firewall.close()
    except FirewallError as exc:
        return _fail(f"[*] Firewall: {exc}")
    family, table = config.nft_table
    print(f"Active grants in {family} {table} set {config.nft_set}:")
    if not grants:
        print("  (none)")
    for g in sorted(grants, key=lambda g: (g.expires_in, str(g.source))):
        left = "no timeout (added by hand?)" if g.expires_in == NO_EXPIRY else \
            f"expires in {g.expires_in} s"
        print(f"  {g.source} -> {g.proto}/{g.port}, {left}")
    return 0


def _control(args: argparse.Namespace, config: ServerConfig) -> int:
    pid = _running_pid(Path(config.pid_file))
    if args.status:
        print(f"Detected fwknopd is running (pid={pid})." if pid else
              "No running fwknopd detected.")
        return 0 if pid else 1
    if not pid:
        print("No running fwknopd detected.")
        return 1
    os.kill(pid, signal.SIGHUP if args.restart else signal.SIGTERM)
    return 0


def _running_pid(path: Path) -> int | None:
    """The pid in the pid file if that process is alive and is fwknopd."""
    try:
        pid = int(path.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    # Never signal an unrelated process that reused a stale pid.
    if b"fwknopd" not in cmdline:
        return None
    return pid


def _daemonize() -> None:
    """Detach from the terminal (the classic double fork)."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _key_gen(args: argparse.Namespace) -> int:
    try:
        key, hmac_key = generate_keys(args.key_len, args.hmac_key_len,
                                      args.hmac_digest_type.lower())
    except ValueError as exc:
        return _fail(f"[*] {exc}")
    text = keygen_text(key, hmac_key)
    if args.key_gen_file:
        write_key_file(Path(args.key_gen_file), text)
        print(f"[+] Wrote Rijndael and HMAC keys to: {args.key_gen_file}")
    else:
        sys.stdout.write(text)
    return 0


def _fail(message: str, log: logging.Logger | None = None) -> int:
    """Report a fatal error: to the log when there is one, else stderr."""
    if log is not None and log.handlers and not isinstance(log.handlers[0],
                                                           logging.NullHandler):
        log.error("%s", message)
        if not any(getattr(h, "stream", None) is sys.stderr for h in log.handlers):
            print(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
