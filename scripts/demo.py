# The demo: the main job on an embedded default configuration.
#
# As root it builds two network namespaces joined by a veth pair, loads a
# default-drop ruleset shaped like OpenWrt's firewall4 into the "router"
# namespace, starts fwknopd there on fresh keys, and knocks from the
# "laptop" namespace with the real fwknop client: port 22 is closed, opens
# for the laptop only, and closes again after FW_ACCESS_TIMEOUT.
# Without root it says so and runs the daemon in UDP mode on loopback with
# -t (decide, but touch no firewall), and knocks once.
# Then, in both cases, it serves the settings page standalone on loopback
# (a scratch router root holding the demo's keys, a stand-in for rpcd's
# sessions), prints its address, the session id to log in with (typed into
# the page's login form: never part of a URL) and the Fwknop2 QR code in the
# terminal. With a terminal it serves until Enter; otherwise it stops.
# Only addresses inside the namespaces it creates (10.203.0.0/24) or
# loopback are used; everything it starts is stopped on exit.

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the namespace helpers the tests use

from fwknopd_uci.server.keygen import generate_keys

PROBE = str(REPO / "tests" / "probe.py")
RULESET = REPO / "tests" / "data" / "fw4-ruleset.nft"
TIMEOUT = 8
PYTHON = sys.executable


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def write_config(folder: Path, key: str, hmac_key: str, extra: str) -> None:
    (folder / "fwknopd.conf").write_text(f"PCAP_FILTER udp port 62201;\n{extra}")
    (folder / "access.conf").write_text(
        "SOURCE ANY\n"
        f"KEY_BASE64 {key}\n"
        f"HMAC_KEY_BASE64 {hmac_key}\n"
        "OPEN_PORTS tcp/22\n"
        "REQUIRE_SOURCE_ADDRESS Y\n"
        f"FW_ACCESS_TIMEOUT {TIMEOUT}\n")
    for name in ("fwknopd.conf", "access.conf"):
        os.chmod(folder / name, 0o600)


def daemon_argv(folder: Path, *extra: str) -> list[str]:
    return [PYTHON, "-m", "fwknopd_uci.server.cli", "-f", "-c", str(folder / "fwknopd.conf"),
            "-a", str(folder / "access.conf"), "-d", str(folder / "digest.cache"),
            "-p", str(folder / "fwknopd.pid"), *extra]


def client_argv(folder: Path, key: str, hmac_key: str, allow: str, server: str) -> list[str]:
    return ["env", f"HOME={folder}", "fwknop", "-A", "tcp/22", "-a", allow, "-D", server,
            "--key-base64-rijndael", key, "--key-base64-hmac", hmac_key, "--use-hmac",
            "--no-rc-file", "--no-save-args"]


def echo_log(proc: subprocess.Popen[str], ready: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"   fwknopd | {line.rstrip()}", flush=True)
        if "main event loop" in line:
            ready.set()


def start(argv: list[str]) -> tuple[subprocess.Popen[str], threading.Event]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    ready = threading.Event()
    threading.Thread(target=echo_log, args=(proc, ready), daemon=True).start()
    if not ready.wait(20):
        proc.kill()
        raise SystemExit("demo: fwknopd did not start; its log is above")
    return proc, ready


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def root_demo(folder: Path, key: str, hmac_key: str) -> int:
    from netns import veth_pair

    with veth_pair(subnet="10.203.0", tag="demo") as pair:
        router, laptop = pair.server, pair.client
        say(f"Two namespaces: router {router.name} ({pair.server_ip}, {pair.server_if}) and "
            f"laptop {laptop.name} ({pair.client_ip})")
        router.run("nft", "-f", str(RULESET))
        say("Router firewall: a default-drop ruleset shaped like firewall4 (table inet fw4)")
        listener = router.popen(PYTHON, PROBE, "listen", "22", stdout=subprocess.DEVNULL)
        write_config(folder, key, hmac_key, f"PCAP_INTF {pair.server_if};\n")
        say(f"Starting fwknopd in the router, sniffing {pair.server_if}")
        daemon, _ = start(router.argv(*daemon_argv(folder, "-i", pair.server_if)))
        try:
            connect = [PYTHON, PROBE, "connect", pair.server_ip, "22"]
            ok = laptop.run(*connect, check=False).returncode == 0
            say(f"Before the knock, laptop -> router tcp/22: {'OPEN' if ok else 'closed'}")
            say("Knocking with the real fwknop client: fwknop -A tcp/22 -a "
                f"{pair.client_ip} -D {pair.server_ip} --use-hmac (keys on the command line)")
            laptop.run(*client_argv(folder, key, hmac_key, pair.client_ip, pair.server_ip))
            opened = time.monotonic()
            deadline = opened + 3
            while time.monotonic() < deadline:
                if laptop.run(*connect, check=False).returncode == 0:
                    break
                time.sleep(0.05)
            else:
                say("The port did not open: see the log above")
                return 1
            say(f"After the knock, laptop -> router tcp/22: OPEN "
                f"(after {1000 * (time.monotonic() - opened):.0f} ms)")
            listing = router.run(*daemon_argv(folder, "--fw-list"), check=False)
            print("   " + listing.stdout.strip().replace("\n", "\n   "))
            say(f"Waiting for FW_ACCESS_TIMEOUT ({TIMEOUT} s) to pass ...")
            deadline = time.monotonic() + TIMEOUT + 6
            while time.monotonic() < deadline:
                if laptop.run(*connect, check=False).returncode != 0:
                    break
                time.sleep(0.5)
            say(f"After {time.monotonic() - opened:.1f} s, laptop -> router tcp/22: "
                f"{'closed' if laptop.run(*connect, check=False).returncode else 'OPEN'}")
        finally:
            stop(daemon)
            listener.kill()
            listener.wait(timeout=10)
    say("Done: namespaces removed.")
    return 0


def user_demo(folder: Path, key: str, hmac_key: str) -> int:
    say("Not running as root: no namespaces and no firewall. Running fwknopd in UDP mode on "
        "loopback with -t (decide, but touch no firewall) instead.")
    write_config(folder, key, hmac_key, "UDPSERV_PORT 62201;\n")
    daemon, _ = start(daemon_argv(folder, "-U", "-t", "-v"))
    try:
        if shutil.which("fwknop"):
            say("Knocking with the real fwknop client on 127.0.0.1")
            subprocess.run(client_argv(folder, key, hmac_key, "127.0.0.1", "127.0.0.1"),
                           check=True, capture_output=True, timeout=20)
        else:
            say("fwknop client not installed: knocking with the project's own encoder")
            import socket

            from fwknopd_uci.spa import StanzaKeys, b64_decode_lenient, build_packet

            keys = StanzaKeys(b64_decode_lenient(key), b64_decode_lenient(hmac_key))
            wire = build_packet("127.0.0.1,tcp/22", keys, timestamp=int(time.time()))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(wire.encode(), ("127.0.0.1", 62201))
        time.sleep(1.5)
    finally:
        stop(daemon)
    say("Done. Run as root (sudo scripts/setup demo) to see a real port open and close.")
    return 0


def page_demo(folder: Path, key: str, hmac_key: str) -> int:
    """Serve the settings page on a scratch root holding the demo's keys."""
    import json
    import secrets

    from fwknopd_uci.openwrt.qr import qr_text
    from fwknopd_uci.openwrt.uci import load

    root = folder / "router"
    (root / "etc" / "config").mkdir(parents=True)
    (root / "var" / "run").mkdir(parents=True)
    uci = root / "etc" / "config" / "fwknopd"
    uci.write_text("config global\n\toption uci_enabled '1'\n\n"
                   "config network\n\toption network 'wan'\n\n"
                   "config access\n\toption SOURCE 'ANY'\n"
                   f"\toption KEY_BASE64 '{key}'\n\toption HMAC_KEY_BASE64 '{hmac_key}'\n"
                   "\toption OPEN_PORTS 'tcp/22'\n\n"
                   "config config\n")
    os.chmod(uci, 0o600)
    sid = secrets.token_hex(16)
    standin = root / "var" / "run" / "rpcd-standin.json"
    standin.write_text(json.dumps({"sessions": {sid: {
        "expires": time.time() + 3600, "access": {"luci-app-fwknopd": ["read", "write"]}}}}))
    server = subprocess.Popen([PYTHON, "-m", "fwknopd_uci.web", "--root", str(root),
                               "--listen", "127.0.0.1:0", "--reload-command", "true"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        address = server.stdout.readline().strip()
        if not address.startswith("Settings page:"):
            say("The settings page did not start")
            return 1
        say(address)
        print(f"   Log in with the session id {sid}\n"
              "   (the page's login form; on a router LuCI hands the page its session)")
        text = qr_text(load(uci).sections_of("access")[0])
        say("The Fwknop2 QR code of the stanza (scan it in the app to import the keys):")
        _print_qr(text)
        if sys.stdin.isatty():
            input("\n==> Press Enter to stop the settings page ... ")
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0


def _print_qr(text: str) -> None:
    """The QR in the terminal: the qrcode library, else the qrencode command."""
    try:
        import qrcode
    except ImportError:
        if shutil.which("qrencode"):
            subprocess.run(["qrencode", "-t", "ansiutf8"], input=text.encode(), check=False,
                           timeout=20)
        else:
            print("   (install qrcode or qrencode to see the QR code here)")
        return
    code = qrcode.QRCode(border=2)
    code.add_data(text)
    code.print_ascii(invert=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="fwknopd-demo-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o700)
        key, hmac_key = generate_keys()
        status = root_demo(folder, key, hmac_key) if os.geteuid() == 0 else \
            user_demo(folder, key, hmac_key)
        return status or page_demo(folder, key, hmac_key)


if __name__ == "__main__":
    sys.exit(main())
