# The daemon's idle RSS budget (20 MB): what the live path must not import,
# and proof that the replacements made for it lose nothing.
#
# - cryptography (about 7.7 MB RSS) loads on the first packet that reaches
#   decryption, hashlib/hmac with libcrypto (about 3.9 MB) on the first one
#   that passes the pre-screen; scapy, pcap_file, subprocess, tempfile and
#   logging.handlers never load on the live path. Each import check runs in
#   a fresh interpreter, since this test process has them all loaded.
# - HMAC now comes from the standard library: checked against cryptography's
#   HMAC for every type and for key lengths around each block size.
# - server/logs.py's SyslogHandler replaced logging.handlers.SysLogHandler:
#   checked byte for byte against it on a real AF_UNIX datagram socket.

from __future__ import annotations

import base64
import logging
import logging.handlers
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from netns import netns, requires_root

from fwknopd_uci.server.logs import FACILITIES, SyslogHandler, setup_logging, syslog_severity
from fwknopd_uci.spa import (
    HMAC_TYPES,
    SpaRefused,
    StanzaKeys,
    build_packet,
    open_packet,
    prescreen,
    replay_digest,
)

TESTS = Path(__file__).resolve().parent
RULESET = TESTS / "data" / "fw4-ruleset.nft"
KEY = b"k" * 32
HMAC_KEY = b"h" * 64

LIVE_PATH = [
    "fwknopd_uci.server.cli",
    "fwknopd_uci.capture",
    "fwknopd_uci.capture.sniffer",
    "fwknopd_uci.capture.udp_server",
    "fwknopd_uci.firewall",
]
# The modules made lazy for the budget, and what they would pull in.
LAZY = ["cryptography", "scapy", "fwknopd_uci.capture.pcap_file", "subprocess", "tempfile",
        "logging.handlers", "hashlib", "hmac", "_hashlib"]

CHECK_IMPORTS = (
    "import importlib, sys\n"
    "importlib.import_module(sys.argv[1])\n"
    "lazy = sys.argv[2].split(',')\n"
    "print(','.join(m for m in sys.modules if m in lazy or m.split('.')[0] in lazy))\n"
)


def _fresh(code: str, *args: str) -> str:
    """Run code in a fresh interpreter; return its stdout, stripped."""
    return subprocess.run([sys.executable, "-c", code, *args], check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip()


@pytest.mark.parametrize("module", LIVE_PATH)
def test_memory_imports_live_path_leaves_lazy_modules_out(module: str) -> None:
    loaded = _fresh(CHECK_IMPORTS, module, ",".join(LAZY))
    assert loaded == "", f"importing {module} loaded {loaded}"


def test_memory_imports_config_load_needs_no_crypto_module(tmp_path: Path) -> None:
    """Parsing access.conf builds StanzaKeys but no HMAC state yet."""
    access = tmp_path / "access.conf"
    access.write_text("SOURCE ANY\nKEY_BASE64 OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc=\n"
                      "HMAC_KEY_BASE64 bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9"
                      "E52ibMyWYNdP1lj2bTphujX1lqQXuQ==\n")
    access.chmod(0o600)
    code = (
        "import sys\n"
        "from fwknopd_uci.config import parse_access_conf, parse_server_conf\n"
        "from fwknopd_uci.server.cli import build_parser, load_runtime\n"
        "conf = sys.argv[1] + '/fwknopd.conf'\n"
        "open(conf, 'w').close()\n"
        "runtime, _ = load_runtime(build_parser().parse_args(['-c', conf, '-a', sys.argv[2]]))\n"
        "keys = runtime.stanzas[0].keys\n"
        "assert keys is not None and keys.hmac_key\n"
        "print(','.join(m for m in ('cryptography', 'hashlib', 'hmac') if m in sys.modules))\n"
    )
    assert _fresh(code, str(tmp_path), str(access)) == ""


def test_memory_imports_garbage_loads_hashlib_but_never_cryptography() -> None:
    """A flood of base64 garbage fails the HMAC check without loading cryptography."""
    code = (
        "import sys\n"
        "from fwknopd_uci.spa import SpaRefused, StanzaKeys, open_packet, prescreen, \\\n"
        "    replay_digest\n"
        f"keys = StanzaKeys({KEY!r}, {HMAC_KEY!r}, 'sha256', 'cbc')\n"
        "wire = prescreen(b'A' * 200)\n"
        "replay_digest(wire)\n"
        "try:\n"
        "    open_packet(wire, keys)\n"
        "except SpaRefused as exc:\n"
        "    print(exc.code, 'hmac' in sys.modules, 'cryptography' in sys.modules)\n"
    )
    assert _fresh(code) == "HMAC_COMPAREFAIL True False"


def test_memory_imports_first_valid_packet_loads_cryptography_and_opens() -> None:
    keys = StanzaKeys(KEY, HMAC_KEY, "sha256", "cbc")
    wire = build_packet("10.0.0.2,tcp/22", keys, timestamp=1_700_000_000)
    code = (
        "import sys\n"
        "from fwknopd_uci.spa import StanzaKeys, open_packet, prescreen\n"
        f"keys = StanzaKeys({KEY!r}, {HMAC_KEY!r}, 'sha256', 'cbc')\n"
        "before = 'cryptography' in sys.modules\n"
        "msg = open_packet(prescreen(sys.argv[1].encode()), keys)\n"
        "print(before, 'cryptography' in sys.modules, msg.message)\n"
    )
    assert _fresh(code, wire) == "False True 10.0.0.2,tcp/22"


def test_memory_imports_replay_digest_is_sha256() -> None:
    """6.2: b64-nopad SHA256 of the wire text, now through digest_b64."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"A" * 200)
    expected = base64.b64encode(digest.finalize()).decode().rstrip("=")
    assert replay_digest(prescreen(b"A" * 200)) == expected


_HMAC_ALGORITHMS = {
    "md5": hashes.MD5, "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512, "sha3_256": hashes.SHA3_256, "sha3_512": hashes.SHA3_512,
}


@pytest.mark.parametrize("hmac_type", sorted(HMAC_TYPES))
@pytest.mark.parametrize("key_len", [1, 16, 63, 64, 65, 71, 72, 73, 104, 128, 135, 136, 137])
def test_memory_imports_stdlib_hmac_matches_cryptography(hmac_type: str, key_len: int) -> None:
    """3.1: the stdlib HMAC equals cryptography's, also across each block size
    (64 for MD5/SHA1/SHA256, 128 for SHA384/512, 136 and 72 for SHA3)."""
    key = bytes(range(key_len))
    data = b"U2FsdGVkX1" + b"x" * 100
    reference = crypto_hmac.HMAC(key, _HMAC_ALGORITHMS[hmac_type]())
    reference.update(data)
    expected = base64.b64encode(reference.finalize()).decode().rstrip("=")
    keys = StanzaKeys(KEY, key, hmac_type)
    assert keys.hmac_b64(data) == expected
    assert keys.hmac_b64(data) == expected  # the cached state is reused, not consumed


def test_memory_imports_hmac_mismatch_is_refused() -> None:
    keys = StanzaKeys(KEY, HMAC_KEY, "sha256", "cbc")
    wire = build_packet("10.0.0.2,tcp/22", keys, timestamp=1_700_000_000)
    tampered = wire[:-1] + ("B" if wire[-1] != "B" else "C")
    with pytest.raises(SpaRefused) as refused:
        open_packet(prescreen(tampered.encode()), keys)
    assert refused.value.code == "HMAC_COMPAREFAIL"


# --- SyslogHandler, the replacement for logging.handlers.SysLogHandler ---


@pytest.fixture
def syslog_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "log")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    try:
        yield path, server
    finally:
        server.close()


def _record(level: int, text: str) -> logging.LogRecord:
    return logging.LogRecord("fwknopd", level, __file__, 1, text, None, None)


@pytest.mark.parametrize("facility", sorted(FACILITIES))
@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR,
                                   logging.CRITICAL])
def test_memory_imports_syslog_datagram_is_the_stdlib_one(
        syslog_socket: tuple[str, socket.socket], facility: str, level: int) -> None:
    """Same bytes as logging.handlers.SysLogHandler with ident "fwknopd[pid]: "."""
    path, server = syslog_socket
    ours = SyslogHandler(path, facility=FACILITIES[facility], ident="fwknopd")
    stdlib = logging.handlers.SysLogHandler(
        address=path, facility=getattr(logging.handlers.SysLogHandler, facility))
    stdlib.ident = f"fwknopd[{os.getpid()}]: "
    try:
        for handler in (ours, stdlib):
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler.handle(_record(level, "Added access rule for 10.0.0.2 -> tcp/22"))
        assert server.recv(4096) == server.recv(4096)
    finally:
        ours.close()
        stdlib.close()


def test_memory_imports_syslog_severities() -> None:
    assert [syslog_severity(level) for level in (logging.DEBUG, logging.INFO, logging.WARNING,
                                                logging.ERROR, logging.CRITICAL)] == \
        [7, 6, 4, 3, 2]
    assert FACILITIES["LOG_DAEMON"] == 3 and FACILITIES["LOG_LOCAL7"] == 23


def test_memory_imports_syslog_non_utf8_ident_is_still_sent(
        syslog_socket: tuple[str, socket.socket]) -> None:
    """A SYSLOG_IDENTITY with a non-UTF-8 byte (read with surrogateescape)."""
    path, server = syslog_socket
    handler = SyslogHandler(path, ident="fw\udcffknop")
    try:
        handler.handle(_record(logging.INFO, "hello"))
        assert server.recv(4096) == f"<30>fw\\udcffknop[{os.getpid()}]: hello\0".encode()
    finally:
        handler.close()


def test_memory_imports_syslog_connects_late_and_reconnects(tmp_path: Path) -> None:
    """Like openlog(): no socket yet is fine; a restarted syslogd is found again."""
    path = str(tmp_path / "log")
    handler = SyslogHandler(path, ident="fwknopd")
    handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        for turn in ("first", "second"):
            server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            server.bind(path)
            server.settimeout(5)
            try:
                handler.handle(_record(logging.WARNING, turn))
                assert server.recv(4096).endswith(f"]: {turn}\0".encode())
            finally:
                server.close()
                os.unlink(path)
    finally:
        handler.close()


def test_memory_imports_syslog_unreachable_reports_through_handle_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    errors: list[logging.LogRecord] = []
    handler = SyslogHandler(str(tmp_path / "absent"), ident="fwknopd")
    monkeypatch.setattr(handler, "handleError", errors.append)
    handler.handle(_record(logging.ERROR, "lost"))
    handler.close()
    assert [r.getMessage() for r in errors] == ["lost"]


def test_memory_imports_setup_logging_uses_our_handler(
        monkeypatch: pytest.MonkeyPatch, syslog_socket: tuple[str, socket.socket]) -> None:
    path, server = syslog_socket
    monkeypatch.setattr("fwknopd_uci.server.logs.SYSLOG_SOCKET", path)
    log = setup_logging(verbosity=0, to_stderr=False, to_syslog=True, identity="abc",
                        facility="LOG_LOCAL3")
    try:
        (handler,) = log.handlers
        assert isinstance(handler, SyslogHandler)
        log.info("Starting fwknopd main event loop.")
        assert server.recv(4096) == \
            f"<{19 << 3 | 6}>abc[{os.getpid()}]: Starting fwknopd main event loop.\0".encode()
    finally:
        setup_logging(verbosity=0, to_stderr=False, to_syslog=False)


# --- The running daemon, as root in a namespace ---

# What /proc/PID/maps shows once hashlib (either name: _hashlib may link
# libcrypto or carry OpenSSL itself) or cryptography's binding is loaded.
OPENSSL = ("_hashlib", "libcrypto")
CRYPTOGRAPHY = "/cryptography/"


def _mapped(pid: int, *names: str) -> bool:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return any(name in maps for name in names)


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        assert proc.poll() is None, path.read_text(errors="replace")
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in the log:\n{path.read_text(errors='replace')}")


@pytest.mark.root
@requires_root
@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is missing")
def test_memory_imports_idle_daemon_maps_no_crypto_library(tmp_path: Path) -> None:
    """Idle: neither libcrypto nor cryptography's binding is mapped. Garbage
    maps libcrypto only; the first valid knock maps the binding and opens."""
    keys = StanzaKeys(KEY, HMAC_KEY, "sha256", "cbc")
    (tmp_path / "fwknopd.conf").write_text("")
    (tmp_path / "access.conf").write_text(
        f"SOURCE ANY\nKEY {KEY.decode()}\nHMAC_KEY {HMAC_KEY.decode()}\nOPEN_PORTS tcp/22\n")
    for name in ("fwknopd.conf", "access.conf"):
        (tmp_path / name).chmod(0o600)
    log = tmp_path / "fwknopd.log"
    send = ("import socket, sys\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.sendto(sys.argv[1].encode(), ('127.0.0.1', 62201))\n")
    with netns("mem") as ns:
        ns.run("nft", "-f", str(RULESET))
        with open(log, "wb") as out:
            daemon = ns.popen(sys.executable, "-m", "fwknopd_uci.server.cli", "-f",
                              "-i", "lo", "-c", str(tmp_path / "fwknopd.conf"),
                              "-a", str(tmp_path / "access.conf"),
                              "-d", str(tmp_path / "digest"), "-p", str(tmp_path / "pid"),
                              stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_for(log, "Starting fwknopd main event loop.", daemon)
            assert not _mapped(daemon.pid, *OPENSSL)
            assert not _mapped(daemon.pid, CRYPTOGRAPHY)
            ns.run(sys.executable, "-c", send, "A" * 200)
            _wait_for(log, "Non-corresponding HMAC", daemon)
            assert _mapped(daemon.pid, *OPENSSL) and not _mapped(daemon.pid, CRYPTOGRAPHY)
            wire = build_packet("127.0.0.1,tcp/22", keys, timestamp=int(time.time()))
            ns.run(sys.executable, "-c", send, wire)
            _wait_for(log, "Added access rule", daemon)
            assert _mapped(daemon.pid, CRYPTOGRAPHY)
        finally:
            daemon.terminate()
            daemon.wait(timeout=10)
