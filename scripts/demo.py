# The demo: the main job on an embedded default configuration.
#
# As root it builds two network namespaces joined by a veth pair, loads a
# default-drop ruleset shaped like OpenWrt's firewall4 into the "router"
# namespace, starts fwknopd there on fresh keys, and knocks from the
# "laptop" namespace with the real fwknop client: port 22 is closed, opens
# for the laptop only, and closes again after FW_ACCESS_TIMEOUT.
# Without root it says so and runs the daemon in UDP mode on loopback with
# -t (decide, but touch no firewall), and knocks once.
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


def root_demo(folder: Path) -> int:
    from netns import veth_pair

    key, hmac_key = generate_keys()
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


def user_demo(folder: Path) -> int:
    say("Not running as root: no namespaces and no firewall. Running fwknopd in UDP mode on "
        "loopback with -t (decide, but touch no firewall) instead.")
    key, hmac_key = generate_keys()
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


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="fwknopd-demo-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o700)
        return root_demo(folder) if os.geteuid() == 0 else user_demo(folder)


if __name__ == "__main__":
    sys.exit(main())
