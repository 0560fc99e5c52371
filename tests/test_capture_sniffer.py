# Tests for capture/sniffer.py on real kernels: the generated BPF filtering in
# the kernel, inbound only, across encapsulations, on veth, lo and tun devices.
#
# All traffic stays inside namespaces made by tests/netns.py (fwkt-*, deleted
# on exit). Sockets are opened in a namespace by moving this thread into it
# with setns(2) for the duration of the call (`inside`); a socket stays in the
# namespace it was created in. Frames with VLAN tags or PPPoE are injected
# from the client namespace through a packet socket on the client's veth end:
# this kernel has no 802.1Q devices, and injection also covers QinQ and PPPoE.

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest
from netns import Namespace, VethPair, netns, requires_root, veth_pair
from scapy.layers.inet import IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import LLC, SNAP, Dot1AD, Dot1Q, Dot3, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.packet import Packet

from fwknopd_uci.capture.frames import LinkType, parse_frame
from fwknopd_uci.capture.pfilter import PacketFilter
from fwknopd_uci.capture.sniffer import CaptureError, Sniffer, link_type_for
from fwknopd_uci.model import IPPROTO_TCP, IPPROTO_UDP, CapturedPacket

SPA_PORT = 62201
UDP_FILTER = PacketFilter.parse("udp port 62201")
WAIT = 3.0  # seconds; the longest any test waits for a frame
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@contextlib.contextmanager
def inside(ns: Namespace) -> Iterator[None]:
    """Run the block with this thread in ``ns``'s network namespace."""
    with (
        open("/proc/thread-self/ns/net", "rb") as home,
        open(f"/run/netns/{ns.name}", "rb") as target,
    ):
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())


def collect(source: Sniffer, until: bytes, limit: int = 200) -> list[CapturedPacket]:
    """recv() until the packet whose payload is ``until`` (bounded in time and count)."""
    got: list[CapturedPacket] = []
    deadline = time.monotonic() + WAIT
    while (left := deadline - time.monotonic()) > 0 and len(got) < limit:
        if not select.select([source], [], [], left)[0]:
            break
        for _ in range(limit):
            try:
                packet = source.recv()
            except BlockingIOError:
                break
            if packet is not None:
                got.append(packet)
                if packet.payload == until:
                    return got
    raise AssertionError(f"marker {until!r} not received; got {got}")


def raw_queue(sniffer: Sniffer, until: bytes) -> list[bytes]:
    """Frames the kernel queued (bypassing recv()'s Python checks) up to the marker."""
    frames: list[bytes] = []
    deadline = time.monotonic() + WAIT
    while (left := deadline - time.monotonic()) > 0 and len(frames) < 200:
        if not select.select([sniffer], [], [], left)[0]:
            break
        data = sniffer._sock.recv(65535)
        frames.append(data)
        packet = parse_frame(sniffer.link, data)
        if packet is not None and packet.payload == until:
            break
    else:
        raise AssertionError(f"marker {until!r} not queued; got {frames}")
    time.sleep(0.05)  # anything queued after the marker would be a bug too
    with contextlib.suppress(BlockingIOError):
        frames.append(sniffer._sock.recv(65535))
    return frames


def send_udp(ns: Namespace, dst: str, port: int, payload: bytes, src: str = "") -> None:
    with inside(ns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        if src:
            sock.bind((src, 0))
        sock.sendto(payload, (dst, port))


def mac_of(ns: Namespace, ifname: str) -> str:
    info = json.loads(ns.run("ip", "-j", "link", "show", "dev", ifname).stdout)
    return str(info[0]["address"])


def inject(pair: VethPair, frames: list[bytes]) -> None:
    """Send raw frames out of the client's veth end (they arrive at the server)."""
    with inside(pair.client), socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((pair.client_if, 0))
        for data in frames:
            sock.send(data)


@pytest.fixture
def pair() -> Iterator[VethPair]:
    with veth_pair(tag="cap") as made:
        yield made


def sniffer_in(
    ns: Namespace, ifname: str, pfilter: PacketFilter = UDP_FILTER, promisc: bool = False
) -> Sniffer:
    with inside(ns):
        return Sniffer(ifname, pfilter, promisc=promisc)


# --- unit tests without a kernel -------------------------------------------


@pytest.mark.parametrize(
    ("arphrd", "expected"),
    [
        (1, LinkType.EN10MB),
        (772, LinkType.EN10MB),
        (512, LinkType.RAW),
        (65534, LinkType.RAW),
        (778, LinkType.RAW),
    ],
)
def test_capture_sniffer_link_type_from_arphrd(arphrd: int, expected: LinkType) -> None:
    """Ethernet and loopback keep their header; PPP, tun, GRE come as bare IP."""
    assert link_type_for(arphrd) == expected


@pytest.mark.parametrize("name", ["", "a/b", "x" * 16, ".", "..", "eth 0", "eth:0", "a\0b"])
def test_capture_sniffer_invalid_interface_name(name: str) -> None:
    with pytest.raises(CaptureError) as excinfo:
        Sniffer(name, UDP_FILTER)
    assert excinfo.value.errno == errno.ENODEV
    assert repr(name) in str(excinfo.value)


# --- real kernels ----------------------------------------------------------


@pytest.mark.root
@requires_root
def test_capture_sniffer_no_such_interface() -> None:
    with netns("cap") as ns, inside(ns), pytest.raises(CaptureError) as excinfo:
        Sniffer("fwkt-none0", UDP_FILTER)
    assert excinfo.value.errno == errno.ENODEV
    assert "'fwkt-none0'" in str(excinfo.value)
    assert isinstance(excinfo.value, OSError)


@pytest.mark.root
@requires_root
def test_capture_sniffer_without_cap_net_raw_is_a_clear_error() -> None:
    code = (
        "import sys\n"
        "from fwknopd_uci.capture import PacketFilter, Sniffer, CaptureError\n"
        "try:\n"
        "    Sniffer('lo', PacketFilter.parse('udp port 62201'))\n"
        "except CaptureError as exc:\n"
        "    print(exc.errno, exc.strerror)\n"
    )
    with netns("cap") as ns:
        out = ns.run(
            "setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", sys.executable, "-c", code
        ).stdout
    assert out.startswith(f"{errno.EPERM} ")
    assert "'lo'" in out and "CAP_NET_RAW" in out


@pytest.mark.root
@requires_root
def test_capture_sniffer_receives_matching_udp_on_veth(pair: VethPair) -> None:
    with sniffer_in(pair.server, pair.server_if) as sniffer:
        assert sniffer.link == LinkType.EN10MB
        send_udp(pair.client, pair.server_ip, SPA_PORT, b"first")
        send_udp(pair.client, pair.server_ip, SPA_PORT + 1, b"other port")
        send_udp(pair.client, pair.server_ip, SPA_PORT, b"marker")
        got = collect(sniffer, b"marker")
    assert [p.payload for p in got] == [b"first", b"marker"]
    first = got[0]
    assert (first.src_ip, first.dst_ip) == (
        IPv4Address(pair.client_ip),
        IPv4Address(pair.server_ip),
    )
    assert (first.proto, first.dst_port) == (IPPROTO_UDP, SPA_PORT)
    assert first.src_port > 0


@pytest.mark.root
@requires_root
def test_capture_sniffer_kernel_drops_other_ports_and_outgoing(pair: VethPair) -> None:
    """Only the matching inbound datagram is ever queued: the BPF does the work."""
    with sniffer_in(pair.server, pair.server_if) as sniffer:
        send_udp(pair.client, pair.server_ip, SPA_PORT + 1, b"other port")
        send_udp(pair.client, pair.server_ip, 53, b"dns-ish")
        # Matching port, but leaving the server: PACKET_OUTGOING.
        send_udp(pair.server, pair.client_ip, SPA_PORT, b"outgoing")
        send_udp(pair.client, pair.server_ip, SPA_PORT, b"marker")
        frames = raw_queue(sniffer, b"marker")
    assert len(frames) == 1
    packet = parse_frame(LinkType.EN10MB, frames[0])
    assert packet is not None and packet.payload == b"marker"


@pytest.mark.root
@requires_root
def test_capture_sniffer_loopback_sees_each_packet_once() -> None:
    """lo shows every packet twice (outgoing and incoming); only one is queued."""
    with netns("cap") as ns, sniffer_in(ns, "lo") as sniffer:
        assert sniffer.link == LinkType.EN10MB
        send_udp(ns, "127.0.0.1", SPA_PORT, b"once")
        send_udp(ns, "127.0.0.1", SPA_PORT, b"marker")
        frames = raw_queue(sniffer, b"marker")
    packets = [parse_frame(LinkType.EN10MB, data) for data in frames]
    assert [p.payload if p else None for p in packets] == [b"once", b"marker"]


def injected_corpus(
    server_mac: str, client_mac: str, src: str, dst: str
) -> tuple[list[bytes], list[bytes]]:
    """(frames to inject, payloads the UDP 62201 sniffer must yield, in order)."""

    def eth(kind: int | None = None) -> Packet:
        if kind is None:
            return Ether(src=client_mac, dst=server_mac)
        return Ether(src=client_mac, dst=server_mac, type=kind)

    def ip(
        payload: bytes,
        dport: int = SPA_PORT,
        frag: int = 0,
        flags: str = "",
        options: list[Packet] | None = None,
    ) -> Packet:
        header = IP(src=src, dst=dst, frag=frag, flags=flags, options=options or [])
        return header / UDP(sport=40000, dport=dport) / payload

    cases: list[tuple[Packet, bool]] = [
        (eth() / ip(b"plain"), True),
        (eth() / Dot1Q(vlan=100) / ip(b"dot1q"), True),
        (eth() / Dot1AD(vlan=10) / Dot1Q(vlan=20) / ip(b"qinq"), True),
        (eth() / Dot1Q(vlan=1) / Dot1Q(vlan=2) / ip(b"qinq-8100"), True),
        (eth() / PPPoE(sessionid=9) / PPP(proto=0x21) / ip(b"pppoe"), True),
        (eth() / Dot1Q(vlan=7) / PPPoE(sessionid=9) / PPP(proto=0x21) / ip(b"dot1q-pppoe"), True),
        (Dot3(src=client_mac, dst=server_mac) / LLC() / SNAP(code=0x0800) / ip(b"snap"), True),
        (eth() / ip(b"ip options", options=[IPOption_Router_Alert()]), True),
        (eth() / ip(b"other port", dport=SPA_PORT + 1), False),
        (eth() / Dot1Q(vlan=100) / ip(b"dot1q other port", dport=1), False),
        (eth() / IP(src=src, dst=dst) / TCP(dport=SPA_PORT, flags="PA") / b"tcp", False),
        (eth() / ip(b"later fragment", frag=10), False),
        (eth() / ip(b"first fragment", flags="MF"), False),
        (eth() / IPv6(src="fd00::2", dst="fd00::1") / UDP(dport=SPA_PORT) / b"ipv6", False),
        (eth() / PPPoE(sessionid=9) / PPP(proto=0x57) / bytes(ip(b"ppp not ip")), False),
        (eth() / ip(b"marker"), True),
    ]
    frames = [bytes(packet) for packet, _ in cases]
    wanted = [bytes(packet[UDP].payload) for packet, ok in cases if ok]
    return frames, wanted


@pytest.mark.root
@requires_root
def test_capture_sniffer_encapsulations_filtered_in_kernel(pair: VethPair) -> None:
    """802.1Q, QinQ, PPPoE, SNAP and IP options pass; ports, TCP, fragments,
    IPv6 and non-IP PPP do not, already in the kernel."""
    frames, wanted = injected_corpus(
        mac_of(pair.server, pair.server_if),
        mac_of(pair.client, pair.client_if),
        pair.client_ip,
        pair.server_ip,
    )
    with sniffer_in(pair.server, pair.server_if) as sniffer:
        inject(pair, frames)
        queued = raw_queue(sniffer, b"marker")
        assert len(queued) == len(wanted)
    with sniffer_in(pair.server, pair.server_if) as sniffer:
        inject(pair, frames)
        got = collect(sniffer, b"marker")
    assert [p.payload for p in got] == wanted
    assert {(p.src_ip, p.dst_ip, p.dst_port) for p in got} == {
        (IPv4Address(pair.client_ip), IPv4Address(pair.server_ip), SPA_PORT)
    }


@pytest.mark.root
@requires_root
def test_capture_sniffer_tcp_filter_reads_segment_data(pair: VethPair) -> None:
    """`tcp dst port N`: the data segment arrives; handshake and replies do not."""
    pfilter = PacketFilter.parse("tcp dst port 62201")
    with inside(pair.server):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with listener, sniffer_in(pair.server, pair.server_if, pfilter) as sniffer:
        listener.bind((pair.server_ip, SPA_PORT))
        listener.listen(1)
        with inside(pair.client):
            client = socket.create_connection((pair.server_ip, SPA_PORT), timeout=WAIT)
        with client:
            client.sendall(b"marker")
            got = collect(sniffer, b"marker")
    assert [p.payload for p in got] == [b"marker"]
    assert got[0].proto == IPPROTO_TCP and got[0].dst_port == SPA_PORT


@pytest.mark.root
@requires_root
def test_capture_sniffer_promiscuous_only_while_open(pair: VethPair) -> None:
    def promiscuity() -> int:
        out = pair.server.run("ip", "-d", "-j", "link", "show", "dev", pair.server_if).stdout
        return int(json.loads(out)[0]["promiscuity"])

    assert promiscuity() == 0
    with sniffer_in(pair.server, pair.server_if, promisc=True) as sniffer:
        assert promiscuity() == 1
        send_udp(pair.client, pair.server_ip, SPA_PORT, b"marker")
        assert [p.payload for p in collect(sniffer, b"marker")] == [b"marker"]
    assert promiscuity() == 0
    with sniffer_in(pair.server, pair.server_if):
        assert promiscuity() == 0


TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


@pytest.mark.root
@requires_root
def test_capture_sniffer_headerless_device_reads_bare_ip() -> None:
    """A tun device (ARPHRD_NONE) is read through SOCK_DGRAM: frames are IP packets."""
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("no /dev/net/tun")
    with netns("cap") as ns:
        with inside(ns):
            tun = os.open("/dev/net/tun", os.O_RDWR)
        try:
            fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", b"fwkt-tun0", IFF_TUN | IFF_NO_PI))
            ns.run("ip", "addr", "add", "10.201.9.1/24", "dev", "fwkt-tun0")
            ns.run("ip", "link", "set", "fwkt-tun0", "up")
            with sniffer_in(ns, "fwkt-tun0") as sniffer:
                assert sniffer.link == LinkType.RAW
                for payload, port in [(b"other", 9), (b"marker", SPA_PORT)]:
                    packet = IP(src="10.201.9.2", dst="10.201.9.1") / UDP(dport=port) / payload
                    os.write(tun, bytes(packet))
                got = collect(sniffer, b"marker")
        finally:
            os.close(tun)
    assert [p.payload for p in got] == [b"marker"]
    assert got[0].src_ip == IPv4Address("10.201.9.2")


@pytest.mark.root
@requires_root
def test_capture_sniffer_interface_down_then_up(pair: VethPair) -> None:
    """The interface going down surfaces once as ENETDOWN from recv(); once it
    is up again the same socket receives again (no reopen needed)."""
    with sniffer_in(pair.server, pair.server_if) as sniffer:
        pair.server.run("ip", "link", "set", pair.server_if, "down")
        assert select.select([sniffer], [], [], WAIT)[0]
        with pytest.raises(OSError) as excinfo:
            sniffer.recv()
        assert excinfo.value.errno == errno.ENETDOWN
        with pytest.raises(BlockingIOError):
            sniffer.recv()
        pair.server.run("ip", "link", "set", pair.server_if, "up")
        # Wait for the carrier to return before sending.
        for _ in range(50):
            state = pair.server.run("ip", "-j", "link", "show", "dev", pair.server_if).stdout
            if json.loads(state)[0].get("operstate") == "UP":
                break
            time.sleep(0.05)
        send_udp(pair.client, pair.server_ip, SPA_PORT, b"marker")
        assert [p.payload for p in collect(sniffer, b"marker")] == [b"marker"]
