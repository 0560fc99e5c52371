# The Python client encoder: round trips through open_packet, the real fwknop
# client's packets, and (offline) the real fwknopd as an oracle for ours.

from __future__ import annotations

import base64
import os
import pwd
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fwknopd_uci.spa import (
    DIGEST_TYPES,
    ENCRYPTION_MODES,
    HMAC_TYPES,
    SpaMessage,
    StanzaKeys,
    b64_encode_nopad,
    build_packet,
    encode_plaintext,
    open_packet,
    prescreen,
    seal,
)

KEY = b"0123456789abcdef0123456789abcdef"
HMAC_KEY = b"hmac key, not the encryption key"
TS = 1_700_000_000
CLIENT = shutil.which("fwknop")
SERVER = shutil.which("fwknopd")


@pytest.mark.parametrize("mode", ENCRYPTION_MODES)
@pytest.mark.parametrize("digest_type", sorted(DIGEST_TYPES))
@pytest.mark.parametrize("hmac_type", [None, *sorted(HMAC_TYPES)])
def test_spa_encode_round_trip_all_types(mode: str, digest_type: str,
                                         hmac_type: str | None) -> None:
    keys = StanzaKeys(KEY, None if hmac_type is None else HMAC_KEY, hmac_type or "sha256", mode)
    wire = build_packet("10.0.0.2,tcp/22", keys, timestamp=TS, digest_type=digest_type)
    assert prescreen(wire.encode()) == wire
    assert "=" not in wire and wire[0] in "89+/"  # 2.6: what every genuine packet starts with
    msg = open_packet(wire, keys)
    assert msg == SpaMessage(rand=msg.rand, username="root", timestamp=TS, version="3.0.0",
                             msg_type=1, message="10.0.0.2,tcp/22", nat_access=None,
                             server_auth=None, client_timeout=0, digest_type=digest_type)
    assert len(msg.rand) == 16 and msg.rand.isdigit()


def test_spa_encode_wire_lengths_match_the_client() -> None:
    """observed.md 3: 161 (no HMAC), 183/188/204/225/247 with md5..sha512 HMAC."""
    assert len(build_packet("127.0.0.2,tcp/22", StanzaKeys(KEY, None), timestamp=TS)) == 161
    for hmac_type, size in (("md5", 183), ("sha1", 188), ("sha256", 204), ("sha384", 225),
                            ("sha512", 247), ("sha3_256", 204), ("sha3_512", 247)):
        keys = StanzaKeys(KEY, HMAC_KEY, hmac_type)
        assert len(build_packet("127.0.0.2,tcp/22", keys, timestamp=TS)) == size


def test_spa_encode_all_fields_round_trip() -> None:
    keys = StanzaKeys(KEY, HMAC_KEY, "sha384", "ctr")
    wire = build_packet("1.2.3.4,tcp/22,udp/53", keys, timestamp=TS, msg_type=2,
                        username="alice", rand="1234567890123456", nat_access="192.168.1.2,22",
                        server_auth="crypt,pw", client_timeout=45, digest_type="sha3_512",
                        version="2.0.4")
    assert open_packet(wire, keys) == SpaMessage(
        rand="1234567890123456", username="alice", timestamp=TS, version="2.0.4", msg_type=4,
        message="1.2.3.4,tcp/22,udp/53", nat_access="192.168.1.2,22", server_auth="crypt,pw",
        client_timeout=45, digest_type="sha3_512")


@pytest.mark.parametrize(("msg_type", "timeout", "expected_type", "expected_timeout"), [
    (1, 30, 3, 30), (2, 30, 4, 30), (5, 30, 6, 30), (3, 0, 1, 0), (4, 0, 2, 0), (6, 0, 5, 0),
    (0, 30, 0, 0), (3, 10, 3, 10),
])
def test_spa_encode_type_follows_timeout(msg_type: int, timeout: int, expected_type: int,
                                         expected_timeout: int) -> None:
    """1.3: the client swaps 1<->3, 2<->4, 5<->6 by the timeout; commands never get one."""
    keys = StanzaKeys(KEY, HMAC_KEY)
    message = "1.2.3.4,uptime" if msg_type == 0 else "1.2.3.4,tcp/22"
    nat = "10.0.0.9,22" if msg_type in (2, 4, 5, 6) else None
    msg = open_packet(build_packet(message, keys, timestamp=TS, msg_type=msg_type,
                                   nat_access=nat, client_timeout=timeout), keys)
    assert (msg.msg_type, msg.client_timeout) == (expected_type, expected_timeout)


def test_spa_encode_deterministic_with_fixed_randomness() -> None:
    keys = StanzaKeys(KEY, HMAC_KEY)
    first, second = (build_packet("1.2.3.4,tcp/22", keys, timestamp=TS,
                                  rand="1111222233334444", salt=b"saltsalt") for _ in range(2))
    assert first == second
    assert build_packet("1.2.3.4,tcp/22", keys, timestamp=TS) != \
        build_packet("1.2.3.4,tcp/22", keys, timestamp=TS)


def test_spa_encode_plaintext_layout() -> None:
    """1.1: field order, b64-nopad free-text fields, optional fields in order."""
    text = encode_plaintext("1.2.3.4,tcp/22", timestamp=TS, rand="1" * 16, msg_type=4,
                            nat_access="h,22", server_auth="a", client_timeout=9)
    assert text == ":".join(["1" * 16, b64_encode_nopad(b"root"), str(TS), "3.0.0", "4",
                             b64_encode_nopad(b"1.2.3.4,tcp/22"), b64_encode_nopad(b"h,22"),
                             b64_encode_nopad(b"a"), "9"])


def test_spa_encode_refuses_impossible_containers() -> None:
    with pytest.raises(ValueError, match="Invalid key length"):
        build_packet("1.2.3.4,tcp/22", StanzaKeys(KEY + b"!", None), timestamp=TS)
    with pytest.raises(ValueError):
        build_packet("1.2.3.4,tcp/22", StanzaKeys(KEY, None), timestamp=TS, digest_type="sha2")
    with pytest.raises(ValueError):
        build_packet("1.2.3.4,tcp/22", StanzaKeys(KEY, None), timestamp=TS, salt=b"short")
    # Legacy keys longer than 16 bytes are truncated, as by the client (2.4).
    legacy = StanzaKeys(b"x" * 40, None, mode="legacy")
    assert open_packet(build_packet("1.2.3.4,tcp/22", legacy, timestamp=TS), legacy)


def test_spa_encode_seal_without_digest() -> None:
    keys = StanzaKeys(KEY, HMAC_KEY)
    body = encode_plaintext("1.2.3.4,tcp/22", timestamp=TS)
    assert open_packet(seal(body, keys), keys).message == "1.2.3.4,tcp/22"
    assert seal(body, keys, salt=b"12345678") == seal(body, keys, salt=b"12345678")


# --- the real fwknop client ----------------------------------------------------------

CLIENT_CASES = [
    (["-M", "cbc"], StanzaKeys(KEY, HMAC_KEY), "1.2.3.4,tcp/22", 1, 0),
    (["-M", "ctr", "--hmac-digest-type", "sha512", "-m", "sha3_256", "-f", "45"],
     StanzaKeys(KEY, HMAC_KEY, "sha512", "ctr"), "1.2.3.4,tcp/22", 3, 45),
    (["-M", "ofb", "--hmac-digest-type", "sha3_512", "-m", "md5"],
     StanzaKeys(KEY, HMAC_KEY, "sha3_512", "ofb"), "1.2.3.4,tcp/22", 1, 0),
    (["-M", "ecb", "--hmac-digest-type", "md5", "-N", "10.0.0.9:2222"],
     StanzaKeys(KEY, HMAC_KEY, "md5", "ecb"), "1.2.3.4,tcp/22", 2, 0),
    (["-M", "cfb", "--hmac-digest-type", "sha1", "-C", "uptime"],
     StanzaKeys(KEY, HMAC_KEY, "sha1", "cfb"), "1.2.3.4,uptime", 0, 0),
]


def _run_client(home: Path, extra: list[str], keys: StanzaKeys) -> str:
    assert CLIENT is not None
    argv = [CLIENT, "-A", "tcp/22", "-a", "1.2.3.4", "-D", "127.0.0.1", "-T", "-v",
            "--no-rc-file", "--no-save-args", "-U", "tester",
            "--key-base64-rijndael", base64.b64encode(keys.key).decode()]
    if keys.hmac_key is not None:
        argv += ["--use-hmac", "--key-base64-hmac", base64.b64encode(keys.hmac_key).decode()]
    # -T builds and prints the packet and sends nothing; HOME is a scratch
    # directory so the client writes no rc file of its own anywhere else.
    out = subprocess.run(argv + extra, capture_output=True, text=True, timeout=20, check=True,
                         env={"HOME": str(home), "PATH": os.environ.get("PATH", "")},
                         stdin=subprocess.DEVNULL).stdout
    return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.strip().startswith("Final SPA Data:"))


@pytest.mark.skipif(CLIENT is None, reason="the fwknop client is not installed")
@pytest.mark.parametrize(("extra", "keys", "message", "msg_type", "timeout"), CLIENT_CASES)
def test_spa_encode_real_client_packets_decode(tmp_path: Path, extra: list[str],
                                               keys: StanzaKeys, message: str, msg_type: int,
                                               timeout: int) -> None:
    wire = _run_client(tmp_path, extra, keys)
    msg = open_packet(prescreen(wire.encode()), keys)
    assert (msg.username, msg.message, msg.msg_type, msg.client_timeout, msg.version) == \
        ("tester", message, msg_type, timeout, "3.0.0")
    assert abs(msg.timestamp - time.time()) < 120
    if msg_type == 2:
        assert msg.nat_access == "10.0.0.9,2222"


# --- the real fwknopd as an offline oracle (observed.md 8) --------------------------

def _pcap(payloads: list[bytes]) -> bytes:
    """Ethernet + IPv4 + UDP to port 62201, IP checksum only (observed.md 8)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for index, payload in enumerate(payloads):
        udp = struct.pack("!HHHH", 40000 + index, 62201, 8 + len(payload), 0) + payload
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), index, 0, 64, 17, 0,
                             bytes((127, 0, 0, 2)), bytes((127, 0, 0, 1)))
        total = sum(struct.unpack("!10H", header))
        total = (total >> 16) + (total & 0xFFFF)
        checksum = ~(total + (total >> 16)) & 0xFFFF
        header = header[:10] + struct.pack("!H", checksum) + header[12:]
        frame = b"\0" * 6 + b"\x02\0\0\0\0\x01" + b"\x08\x00" + header + udp
        out.append(struct.pack("<IIII", TS + index, 0, len(frame), len(frame)) + frame)
    return b"".join(out)


@contextmanager
def _oracle_argv_prefix() -> Iterator[list[str]]:
    """As root: a private netns and uid nobody (nothing of the host's is ever
    touched). Otherwise the server already runs unprivileged."""
    if os.geteuid() != 0:
        yield []
        return
    if shutil.which("ip") is None or shutil.which("setpriv") is None:
        pytest.skip("needs iproute2 and setpriv to sandbox fwknopd as root")
    from netns import netns  # tests/netns.py: fwkt- namespaces, removed on exit

    with netns("spa") as ns:
        yield ns.argv("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--")


ORACLE_STANZAS = [
    StanzaKeys(KEY, HMAC_KEY),
    StanzaKeys(KEY, HMAC_KEY, "sha3_256", "ctr"),
    StanzaKeys(KEY, HMAC_KEY, "sha512", "ofb"),
    StanzaKeys(KEY, HMAC_KEY, "md5", "ecb"),
    StanzaKeys(KEY, HMAC_KEY, "sha1", "cfb"),
    StanzaKeys(KEY, HMAC_KEY, "sha384", "legacy"),
    StanzaKeys(b"a passphrase", None),
]


@pytest.mark.skipif(SERVER is None, reason="fwknopd is not installed")
@pytest.mark.parametrize("keys", ORACLE_STANZAS, ids=repr)
def test_spa_encode_real_server_accepts_our_packets(keys: StanzaKeys) -> None:
    """`fwknopd -t --pcap-file` (test mode: no firewall changes) decodes them."""
    now = int(time.time())
    packets = [
        build_packet("1.2.3.4,tcp/22", keys, timestamp=now, digest_type="sha3_512"),
        build_packet("1.2.3.5,tcp/22,udp/53", keys, timestamp=now, client_timeout=30,
                     username="oracle-user", digest_type="md5"),
        build_packet("1.2.3.6,tcp/22", keys, timestamp=now, msg_type=2,
                     nat_access="10.0.0.9,22", server_auth="crypt,pw"),
    ]
    workdir = Path(tempfile.mkdtemp(prefix="fwkt-spa-oracle-"))
    try:
        (workdir / "spa.pcap").write_bytes(_pcap([p.encode() for p in packets]))
        (workdir / "fwknopd.conf").write_text("ENABLE_SPA_PACKET_AGING N;\n")
        lines = ["SOURCE ANY", f"KEY_BASE64 {b64_encode_nopad(keys.key)}",
                 f"ENCRYPTION_MODE {keys.mode}"]
        if keys.hmac_key is not None:
            lines += [f"HMAC_KEY_BASE64 {b64_encode_nopad(keys.hmac_key)}",
                      f"HMAC_DIGEST_TYPE {keys.hmac_type}"]
        (workdir / "access.conf").write_text("\n".join(lines) + "\n")
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for path in (workdir, *workdir.iterdir()):
                os.chown(path, nobody.pw_uid, nobody.pw_gid)
        for path in workdir.iterdir():
            path.chmod(0o600)
        with _oracle_argv_prefix() as prefix:
            assert SERVER is not None
            result = subprocess.run(
                [*prefix, SERVER, "-f", "-v", "-t", "-C", str(len(packets)),
                 "--pcap-file", str(workdir / "spa.pcap"), "-c", str(workdir / "fwknopd.conf"),
                 "-a", str(workdir / "access.conf"), "-d", str(workdir / "digest.cache"),
                 "-p", str(workdir / "fwknopd.pid")],
                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                check=False)  # judged by its log below
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log = result.stdout + result.stderr
    assert log.count("SPA Decode (res=0)") == len(packets), log[-3000:]
    for text in ("Message String: 1.2.3.4,tcp/22", "Message String: 1.2.3.5,tcp/22,udp/53",
                 "Client Timeout: 30", "Username: oracle-user", "Nat Access: 10.0.0.9,22",
                 "Server Auth: crypt,pw", "Digest Type: 7 (SHA3_512)", "Digest Type: 1 (MD5)"):
        assert text in log, text
    assert "Error creating fko context" not in log
