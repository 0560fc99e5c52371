# The nft runners: error summaries, the exact argv of the binary runner (with
# a stand-in "nft" script of our own), the fallback choice, and, as root in
# our own namespace, that libnftables and the nft binary answer the same
# scripts the same way. The ctypes runner never runs in the pytest process:
# a libnftables context acts on the caller's network namespace.

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from netns import netns, requires_root

from fwknopd_uci.firewall import FirewallError, LibNftablesRunner, NftCommandRunner, runners
from fwknopd_uci.firewall.runners import default_runner, summarise_nft_error

RULESET = Path(__file__).resolve().parent / "data" / "fw4-ruleset.nft"


@pytest.mark.parametrize(("stderr", "message"), [
    # The binary reading -f - puts a location first; the library does not.
    (("/dev/stdin:1:22-27: Error: No such file or directory\n"
      "add element inet fw4 nosuch { 10.0.0.1 . tcp . 22 timeout 30s }\n"
      "                     ^^^^^^\n"),
     ("nft: No such file or directory: add element inet fw4 nosuch "
      "{ 10.0.0.1 . tcp . 22 timeout 30s }")),
    ("Error: No such file or directory\nlist table inet nosuch\n                ^^^^^^\n",
     "nft: No such file or directory: list table inet nosuch"),
    # Kernel errors come without the command (libnftables may name the wrong one).
    (("Error: Could not process rule: File exists\nadd set inet fw4 s { type ipv4_addr; }\n"
      "                 ^\n"), "nft: Could not process rule: File exists"),
    # A warning line before the real error; the last error wins.
    (("netlink: Error: Unknown set '__map0' in lookup expression\n"
      "Error: No such file or directory\nlist chain inet fw4 nosuch\n       ^^^^^^\n"),
     "nft: No such file or directory: list chain inet fw4 nosuch"),
    ("Error: syntax error, unexpected newline\n", "nft: syntax error, unexpected newline"),
    ("Error: Could not process rule: Operation not permitted\n^^^^\n",
     "nft: Could not process rule: Operation not permitted"),
    ("something odd\nhappened\n", "nft: something odd happened"),
    ("", "nft failed without a message"),
])
def test_firewall_runners_summarise_nft_error(stderr: str, message: str) -> None:
    assert summarise_nft_error(stderr) == message


@pytest.fixture
def fake_nft(tmp_path: Path) -> Path:
    """An "nft" of our own: prints its argv and stdin as JSON, fails on 'fail'."""
    script = tmp_path / "nft"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, sys, time
        data = "" if "-j" in sys.argv else sys.stdin.read()
        if "sleep" in data:
            time.sleep(5)
        if "fail" in data + " ".join(sys.argv):
            sys.stderr.write("/dev/stdin:1:1-4: Error: injected\\nfail here\\n^^^^\\n")
            sys.exit(1)
        print(json.dumps({{"argv": sys.argv[1:], "stdin": data}}))
        """))
    script.chmod(0o755)
    return script


def test_firewall_runners_command_argv(fake_nft: Path) -> None:
    """Changes go to `nft -f -` on stdin; JSON listings are one argv word after --."""
    runner = NftCommandRunner(str(fake_nft))
    script = "add element inet fw4 s { 192.0.2.1 . tcp . 22 timeout 3s }\n"
    assert json.loads(runner.run(script)) == {"argv": ["-f", "-"], "stdin": script}
    assert json.loads(runner.run("list tables", json_output=True)) == {
        "argv": ["-j", "--", "list tables"], "stdin": ""}


def test_firewall_runners_command_errors(fake_nft: Path, tmp_path: Path) -> None:
    with pytest.raises(FirewallError, match=r"^nft: injected: fail here$"):
        NftCommandRunner(str(fake_nft)).run("fail\n")
    with pytest.raises(FirewallError, match=r"did not finish in 0\.3 s"):
        NftCommandRunner(str(fake_nft), timeout=0.3).run("sleep\n")
    missing = tmp_path / "no-such-nft"
    with pytest.raises(FirewallError, match="not found: is nftables installed"):
        NftCommandRunner(str(missing)).run("list tables", json_output=True)


def test_firewall_runners_library_that_does_not_load() -> None:
    with pytest.raises(FirewallError, match=r"^cannot load libnft-missing\.so\.0: "):
        LibNftablesRunner("libnft-missing.so.0")


def test_firewall_runners_default_falls_back_to_the_binary(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def unloadable() -> LibNftablesRunner:
        raise FirewallError("cannot load libnftables.so.1: gone")

    monkeypatch.setattr(runners, "LibNftablesRunner", unloadable)
    assert isinstance(default_runner(), NftCommandRunner)


# Runs inside the namespace: the same scripts through both runners, printed as
# JSON so the test can compare them; then whether a long-lived libnftables
# context sees a change made by another process.
SAME_SCRIPTS = r"""
import json, subprocess, sys
from fwknopd_uci.firewall import FirewallError, LibNftablesRunner, NftCommandRunner
from fwknopd_uci.firewall.runners import default_runner
scripts = [
    ("list tables", True),
    ("list table inet nosuch", True),
    ("list chain inet fw4 nosuch", True),
    ("add set inet fw4 s1 { type ipv4_addr . inet_proto . inet_service; flags timeout; }\n",
     False),
    ("add set inet fw4 s1 { type ipv4_addr; }\n", False),
    ("add element inet fw4 nosuch { 10.0.0.1 . tcp . 22 timeout 3s }\n", False),
    ("add element inet fw4 s1 { 10.0.0.1 . tcp . 22 timeout 30s }\n"
     "replace rule inet fw4 input handle 99999 accept\n", False),
    ("list set inet fw4 s1", True),
    ("bogus\n", False),
]
results = {}
for name, runner in (("lib", LibNftablesRunner()), ("cmd", NftCommandRunner())):
    out = []
    for script, as_json in scripts:
        try:
            text = runner.run(script, json_output=as_json)
            out.append(["ok", json.loads(text) if as_json else text])
        except FirewallError as exc:
            out.append(["error", str(exc)])
    results[name] = out
lib = LibNftablesRunner()
seen = [json.loads(lib.run("list set inet fw4 s1", json_output=True))]
subprocess.run(["nft", "add", "element", "inet", "fw4", "s1", "{ 10.0.0.2 . udp . 53 }"],
               check=True, timeout=10)
seen.append(json.loads(lib.run("list set inet fw4 s1", json_output=True)))
lib.close()
results["seen"] = [len(doc["nftables"][1]["set"].get("elem", [])) for doc in seen]
results["default"] = type(default_runner()).__name__
print(json.dumps(results))
"""


@pytest.mark.root
@requires_root
def test_firewall_runners_library_and_binary_agree() -> None:
    with netns("rn") as ns:
        ns.run("nft", "-f", str(RULESET))
        results = json.loads(ns.run(sys.executable, "-c", SAME_SCRIPTS).stdout)
    assert results["lib"] == results["cmd"]
    outcomes = [kind for kind, _ in results["lib"]]
    assert outcomes == ["ok", "error", "error", "ok", "error", "error", "error", "ok", "error"]
    assert results["lib"][1][1] == "nft: No such file or directory: list table inet nosuch"
    assert results["seen"] == [0, 1]
    assert results["default"] == "LibNftablesRunner"


@pytest.mark.root
@requires_root
def test_firewall_runners_closed_library_runner_refuses() -> None:
    code = ("from fwknopd_uci.firewall import FirewallError, LibNftablesRunner\n"
            "r = LibNftablesRunner(); r.close(); r.close()\n"
            "try:\n    r.run('list tables')\nexcept FirewallError as e:\n    print(e)\n")
    with netns("rn") as ns:
        out = ns.run(sys.executable, "-c", code).stdout.strip()
    assert out == "nft runner used after close()"
