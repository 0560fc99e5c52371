# The live capture path must never load scapy (52-84 MB RSS on a router,
# fwknop-2.6.10-observed.md 7). Each check runs in a fresh interpreter so that the scapy
# the other test modules import cannot hide a regression.

from __future__ import annotations

import subprocess
import sys

import pytest
from netns import netns, requires_root

CHECK_NO_SCAPY = (
    "import importlib, sys\n"
    "importlib.import_module(sys.argv[1])\n"
    "loaded = sorted(m for m in sys.modules if m == 'scapy' or m.startswith('scapy.'))\n"
    "print(','.join(loaded))\n"
)


@pytest.mark.parametrize(
    "module",
    [
        "fwknopd_uci.capture.frames",
        "fwknopd_uci.capture.pfilter",
        "fwknopd_uci.capture.sniffer",
        "fwknopd_uci.capture.udp_server",
        "fwknopd_uci.capture.pcap_file",  # imports scapy lazily, on first use
        "fwknopd_uci.capture",
    ],
)
def test_capture_imports_leave_scapy_out(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK_NO_SCAPY, module],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert out.strip() == "", f"{module} pulled in {out.strip()}"


def test_capture_imports_read_pcap_loads_scapy_only_when_called() -> None:
    code = (
        "import sys\n"
        "from fwknopd_uci.capture import read_pcap\n"
        "assert 'scapy' not in sys.modules\n"
        "try:\n"
        "    read_pcap('/nonexistent/x.pcap', None)\n"
        "except OSError:\n"
        "    pass\n"
        "print('scapy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    assert out.strip() == "True"


@pytest.mark.root
@requires_root
def test_capture_imports_live_sniffer_stays_small() -> None:
    """An open Sniffer costs about what a bare packet socket does (12 MB,
    fwknop-2.6.10-observed.md 7), far from scapy's 52+ MB."""
    code = (
        "import sys\n"
        "from fwknopd_uci.capture import PacketFilter, Sniffer\n"
        "sniffer = Sniffer('lo', PacketFilter.parse('udp port 62201'))\n"
        "status = open('/proc/self/status').read().split('\\n')\n"
        "rss = [line.split()[1] for line in status if line.startswith('VmRSS:')][0]\n"
        "print(rss, any(m.startswith('scapy') for m in sys.modules))\n"
    )
    with netns("imp") as ns:
        out = ns.run(sys.executable, "-c", code, timeout=60).stdout.split()
    rss_kb, scapy_loaded = int(out[0]), out[1]
    assert scapy_loaded == "False"
    assert rss_kb < 30_000, f"live sniffer uses {rss_kb} kB"
