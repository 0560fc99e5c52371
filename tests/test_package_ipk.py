# The .ipk that scripts/build-ipk makes from openwrt/Makefile, and what
# happens when it is installed.
#
# Built once per module into a temporary directory. The archive tests read
# it as opkg would (outer gzip'd tar, then control.tar.gz and data.tar.gz).
# The install test unpacks it into a scratch root the way opkg does (files,
# plus /usr/lib/opkg/info/fwknopd-uci.*), then runs the maintainer scripts
# as an image build does: postinst and prerm with IPKG_INSTROOT set, with
# stand-ins for /lib/functions.sh (default_postinst, default_prerm) and
# /etc/rc.common at the boundary openwrt.md 5 documents, and the
# uci-defaults script the way the first boot runs it, with the real
# fwknopd-uci tool from the unpacked package. The DEPENDS test scans the
# package's imports against the mapping documented in openwrt/Makefile.

from __future__ import annotations

import ast
import base64
import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
STANDINS = TESTS / "standins"
BUILD_IPK = REPO / "scripts" / "build-ipk"
MAKEFILE = REPO / "openwrt" / "Makefile"
PACKAGE_SRC = REPO / "src" / "fwknopd_uci"
PKG = "fwknopd-uci"
TIMEOUT = 120  # seconds for one build or one maintainer script

# Modules of the standard library that OpenWrt does not ship in
# python3-light but in packages of their own (python3's
# files/python3-package-*.mk, openwrt.md 4.2). http needs email, so
# python3-urllib, although its files are in light.
NOT_IN_LIGHT = {
    "asyncio": "python3-asyncio", "cgi": "python3-cgi", "cgitb": "python3-cgitb",
    "ctypes": "python3-ctypes", "curses": "python3-ncurses", "dbm": "python3-dbm",
    "decimal": "python3-decimal", "email": "python3-urllib", "http": "python3-urllib",
    "lib2to3": "python3-lib2to3", "logging": "python3-logging", "lzma": "python3-lzma",
    "multiprocessing": "python3-multiprocessing", "pydoc": "python3-pydoc",
    "readline": "python3-readline", "sqlite3": "python3-sqlite3", "ssl": "python3-openssl",
    "unittest": "python3-unittest", "urllib": "python3-urllib", "uuid": "python3-uuid",
    "venv": "python3-venv", "webbrowser": "python3-webbrowser", "xml": "python3-xml",
    "xmlrpc": "python3-xml",
}
# Optional paths whose imports are not the package's dependencies.
OPTIONAL_MODULES = {"capture/pcap_file.py"}  # --pcap-file, needs scapy
NOT_PYTHON_DEPENDS = {"nftables-json"}


def _version() -> str:
    with open(REPO / "pyproject.toml", "rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    assert isinstance(version, str)
    return version


def _build(out: Path) -> Path:
    done = subprocess.run([sys.executable, str(BUILD_IPK), "-o", str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    path = Path(done.stdout.strip())
    assert path.parent == out and path.is_file()
    return path


@dataclass
class Ipk:
    path: Path
    outer: list[tarfile.TarInfo]
    parts: dict[str, bytes]
    control: dict[str, tuple[tarfile.TarInfo, bytes]]
    data: dict[str, tuple[tarfile.TarInfo, bytes]]

    def fields(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        last = ""
        for line in self.control["./control"][1].decode().splitlines():
            if line.startswith(" "):
                fields[last] += "\n" + line[1:]
            else:
                last, _, value = line.partition(": ")
                fields[last] = value
        return fields

    def files(self) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
        return {n: m for n, m in self.data.items() if m[0].isfile()}


def _members(blob: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    found: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info) if info.isfile() else None
            found[info.name] = (info, handle.read() if handle else b"")
    return found


def _open(path: Path) -> Ipk:
    with tarfile.open(path, mode="r:gz") as tar:
        outer = tar.getmembers()
        parts = {}
        for info in outer:
            handle = tar.extractfile(info)
            assert handle is not None
            parts[info.name] = handle.read()
    return Ipk(path, outer, parts, _members(parts["./control.tar.gz"]),
               _members(parts["./data.tar.gz"]))


@pytest.fixture(scope="module")
def ipk(tmp_path_factory: pytest.TempPathFactory) -> Ipk:
    return _open(_build(tmp_path_factory.mktemp("ipk")))


def test_ipk_build_is_deterministic(ipk: Ipk, tmp_path: Path) -> None:
    """The same tree gives the same bytes; the name carries version, release, all."""
    again = _build(tmp_path)
    assert again.read_bytes() == ipk.path.read_bytes()
    assert ipk.path.name == f"{PKG}_{_version()}-1_all.ipk"


def test_ipk_outer_layout_is_what_opkg_reads(ipk: Ipk) -> None:
    """A gzip'd tar of ./debian-binary, ./data.tar.gz, ./control.tar.gz (ipkg-build)."""
    assert ipk.path.read_bytes()[:2] == b"\x1f\x8b"
    assert [m.name for m in ipk.outer] == ["./debian-binary", "./data.tar.gz",
                                           "./control.tar.gz"]
    assert ipk.parts["./debian-binary"] == b"2.0\n"
    for name in ("./data.tar.gz", "./control.tar.gz"):
        assert ipk.parts[name][:2] == b"\x1f\x8b"
        assert gzip.decompress(ipk.parts[name])  # a valid gzip stream
    assert all(m.uid == 0 and m.gid == 0 and m.isfile() for m in ipk.outer)


def test_ipk_control_fields(ipk: Ipk) -> None:
    """control as opkg needs it; conffiles; the SDK-style maintainer script wrappers."""
    fields = ipk.fields()
    assert fields["Package"] == PKG
    assert fields["Version"] == f"{_version()}-1"
    assert fields["Architecture"] == "all"
    assert fields["Provides"] == "fwknopd"
    assert fields["Conflicts"] == "fwknopd"
    depends = fields["Depends"].split(", ")
    assert depends[0] == "libc" and "python3-light" in depends and "nftables-json" in depends
    assert re.fullmatch(r".+ <[^<>@\s]+@[^<>\s]+>", fields["Maintainer"])
    assert fields["Description"].count("\n") >= 1
    size = sum(len(content) for info, content in ipk.data.values() if info.isfile())
    assert fields["Installed-Size"] == str(size)
    assert set(fields) >= {"Package", "Version", "Depends", "Provides", "Conflicts",
                           "Architecture", "Maintainer", "Description", "Installed-Size"}

    assert ipk.control["./conffiles"][1] == b"/etc/config/fwknopd\n"
    scripts = {n: c.decode() for n, (i, c) in ipk.control.items() if i.mode == 0o755
               and i.isfile()}
    assert set(scripts) == {"./postinst", "./postinst-pkg", "./prerm", "./postrm"}
    assert 'default_postinst "$0" "$@"' in scripts["./postinst"]
    assert 'default_prerm "$0" "$@"' in scripts["./prerm"]
    for name, text in scripts.items():
        assert text.startswith("#!/bin/sh\n"), name
        assert "$$" not in text, f"{name}: make's $$ escaping leaked"
        done = subprocess.run(["sh", "-n"], input=text, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
        assert done.returncode == 0, f"{name}: {done.stderr}"


def test_ipk_data_tree_has_exactly_the_package(ipk: Ipk) -> None:
    """root:root, right modes, .py sources of src/fwknopd_uci only (no caches, no tests)."""
    assert all(i.uid == 0 and i.gid == 0 and i.uname == "root" and i.gname == "root"
               for i, _ in ipk.data.values())
    assert all(i.isfile() or i.isdir() for i, _ in ipk.data.values())
    assert all(i.mode == 0o755 for i, _ in ipk.data.values() if i.isdir())
    files = ipk.files()
    lib = "./usr/lib/fwknopd-uci/"
    python = {n for n in files if n.startswith(lib)}
    expected_python = {lib + p.relative_to(PACKAGE_SRC.parent).as_posix()
                       for p in PACKAGE_SRC.rglob("*.py") if "__pycache__" not in p.parts}
    assert python == expected_python
    for name in python:
        info, content = files[name]
        assert info.mode == 0o644
        assert content == (PACKAGE_SRC.parent / name.removeprefix(lib)).read_bytes()
    assert not [n for n in ipk.data if "__pycache__" in n or n.endswith(".pyc")
                or "/tests/" in n or "/test_" in n]
    modes = {n: files[n][0].mode for n in files if n not in python}
    assert modes == {
        "./etc/config/fwknopd": 0o600,
        "./etc/init.d/fwknopd": 0o755,
        "./etc/uci-defaults/90_fwknopd": 0o755,
        "./usr/bin/fwknopd-uci": 0o755,
        "./usr/sbin/fwknopd": 0o755,
        "./usr/share/nftables.d/chain-pre/input/fwknopd.nft": 0o644,
        "./usr/share/nftables.d/table-post/fwknopd.nft": 0o644,
    }
    for name in modes:
        assert files[name][1] == (REPO / "files" / name.removeprefix("./")).read_bytes()


# --- installing ---------------------------------------------------------------------------


class Scratch:
    """A root the .ipk is installed into, as opkg would on an image build."""

    def __init__(self, root: Path, ipk: Ipk) -> None:
        self.root = root
        self.info = root / "usr" / "lib" / "opkg" / "info"
        self.log = root.parent / "standin.log"
        self.log.write_text("")
        root.mkdir()
        listed = []
        for name, (info, content) in sorted(ipk.data.items()):
            target = root / name.removeprefix("./")
            if info.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.write_bytes(content)
                target.chmod(info.mode)
                listed.append(name.removeprefix("."))
        self.info.mkdir(parents=True)
        for name, (info, content) in ipk.control.items():
            if info.isfile():
                target = self.info / f"{PKG}.{name.removeprefix('./')}"
                target.write_bytes(content)
                target.chmod(info.mode)
        (self.info / f"{PKG}.list").write_text("".join(f"{n}\n" for n in listed))
        # What the image around the package provides: the stand-ins.
        (root / "lib").mkdir()
        shutil.copyfile(STANDINS / "functions.sh", root / "lib" / "functions.sh")
        shutil.copyfile(STANDINS / "rc.common", root / "etc" / "rc.common")
        (root / "var" / "run" / "ubus").mkdir(parents=True)
        # The tool as the router runs it: the unpacked wrapper, with our python.
        self.tool = root.parent / "fwknopd-uci"
        wrapper = root / "usr" / "bin" / "fwknopd-uci"
        self.tool.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{wrapper}" "$@"\n')
        self.tool.chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        path = f"{STANDINS}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}" \
               f"{os.environ.get('PATH', '')}"
        return {**os.environ, "PATH": path, "STANDIN_LOG": str(self.log),
                "STANDINS": str(STANDINS), **extra}

    def maintainer(self, script: str) -> subprocess.CompletedProcess[str]:
        """Run info/fwknopd-uci.SCRIPT with IPKG_INSTROOT set (an image build)."""
        path = self.info / f"{PKG}.{script}"
        return subprocess.run(["sh", str(path)], env=self.env(IPKG_INSTROOT=str(self.root)),
                              capture_output=True, text=True, timeout=TIMEOUT, check=False)

    def first_boot_uci_defaults(self) -> subprocess.CompletedProcess[str]:
        """What /etc/init.d/boot does: source each script in a subshell, delete on 0."""
        command = 'cd "$1" && for f in ./*; do ( . "$f" ) && rm -f "$f"; done'
        defaults = self.root / "etc" / "uci-defaults"
        return subprocess.run(
            ["sh", "-c", command, "sh", str(defaults)],
            env=self.env(FWKNOPD_UCI=str(self.tool), FWKNOPD_ROOT=str(self.root)),
            capture_output=True, text=True, timeout=TIMEOUT, check=False)

    def run_python(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                              timeout=TIMEOUT, check=False, env=self.env())


@pytest.fixture
def scratch(ipk: Ipk, tmp_path: Path) -> Iterator[Scratch]:
    yield Scratch(tmp_path / "root", ipk)


def _quiet(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "" and done.stderr == ""


def _keys(config: str) -> dict[str, str]:
    return dict(re.findall(r"option (\w*KEY\w*) '([^']*)'", config))


def test_ipk_install_on_an_image_build(scratch: Scratch, ipk: Ipk) -> None:
    """postinst (IPKG_INSTROOT set), then first-boot uci-defaults with the real tool.

    /lib/functions.sh and /etc/rc.common are stand-ins at the documented
    boundary (they act only inside IPKG_INSTROOT); the tool, the wrappers
    and the package are the unpacked ones.
    """
    uci = scratch.root / "etc" / "config" / "fwknopd"
    shipped = uci.read_text()
    assert "__CHANGEME__" in shipped

    _quiet(scratch.maintainer("postinst"))
    link = scratch.root / "etc" / "rc.d" / "S95fwknopd"
    assert os.readlink(link) == "../init.d/fwknopd"
    assert scratch.log.read_text() == f"default_postinst {PKG}\n"
    assert uci.read_text() == shipped  # keys are made on the device, not in the image

    _quiet(scratch.first_boot_uci_defaults())
    assert not (scratch.root / "etc" / "uci-defaults" / "90_fwknopd").exists()
    config = uci.read_text()
    assert "__CHANGEME__" not in config
    keys = _keys(config)
    assert set(keys) == {"KEY_BASE64", "HMAC_KEY_BASE64"}
    assert len(base64.b64decode(keys["KEY_BASE64"], validate=True)) == 32
    assert len(base64.b64decode(keys["HMAC_KEY_BASE64"], validate=True)) == 64
    assert uci.stat().st_mode & 0o777 == 0o600
    caches = list((scratch.root / "usr" / "lib" / "fwknopd-uci").rglob("*.pyc"))
    assert len(caches) == len(list(PACKAGE_SRC.rglob("*.py")))

    # The next sysupgrade runs it again: nothing changes, nothing is printed.
    defaults = scratch.root / "etc" / "uci-defaults" / "90_fwknopd"
    defaults.write_bytes(ipk.files()["./etc/uci-defaults/90_fwknopd"][1])
    _quiet(scratch.first_boot_uci_defaults())
    assert uci.read_text() == config


def test_ipk_installed_wrappers_run_the_installed_package(scratch: Scratch) -> None:
    """`fwknopd -V` and `fwknopd-uci --root <scratch> plan` from the unpacked tree.

    The python is this venv's (the router's /usr/bin/python3 is not here);
    the package imported is the unpacked one, not the checkout.
    """
    root = scratch.root
    daemon = str(root / "usr" / "sbin" / "fwknopd")
    done = scratch.run_python(daemon, "-V")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"fwknopd server {_version()}")
    where = scratch.run_python("-c", "import runpy, sys\n"
                               f"sys.argv = [{daemon!r}, '-V']\n"
                               f"try: runpy.run_path({daemon!r}, run_name='__main__')\n"
                               "except SystemExit: pass\n"
                               "print(sys.modules['fwknopd_uci'].__file__)")
    assert where.stdout.splitlines()[-1].startswith(str(root / "usr" / "lib" / "fwknopd-uci"))

    tool = str(root / "usr" / "bin" / "fwknopd-uci")
    _quiet(scratch.run_python(tool, "--root", str(root), "keys-init"))
    # Shipped default: UCI control off and no /etc/fwknop, so one clear error.
    done = scratch.run_python(tool, "--root", str(root), "plan")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == "STATE=error"
    assert len(done.stderr.splitlines()) == 1 and "/etc/fwknop/" in done.stderr
    # `uci set fwknopd.@global[0].uci_enabled=1; uci commit`, wan up on eth1.
    uci = root / "etc" / "config" / "fwknopd"
    uci.write_text(uci.read_text().replace("#\toption uci_enabled '1'",
                                           "\toption uci_enabled '1'"))
    (root / "var" / "run" / "ubus" / "network.interface.wan.json").write_text(
        '{"up": true, "pending": false, "l3_device": "eth1", "device": "eth1"}\n')
    done = scratch.run_python(tool, "--root", str(root), "plan")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == ["STATE=run", "DEVICE=eth1", "NETWORK=wan"]


def test_ipk_remove_on_an_image_build(scratch: Scratch) -> None:
    """prerm disables the service; postrm removes /usr/lib/fwknopd-uci (with its .pyc).

    /lib/functions.sh and /etc/rc.common are stand-ins at the documented
    boundary; everything happens inside the scratch root.
    """
    _quiet(scratch.maintainer("postinst"))
    link = scratch.root / "etc" / "rc.d" / "S95fwknopd"
    assert link.is_symlink()
    _quiet(scratch.maintainer("prerm"))
    assert not link.is_symlink()
    upgrade = subprocess.run(
        ["sh", str(scratch.info / f"{PKG}.postrm")],
        env=scratch.env(IPKG_INSTROOT=str(scratch.root), PKG_UPGRADE="1"),
        capture_output=True, text=True, timeout=TIMEOUT, check=False)
    _quiet(upgrade)
    assert (scratch.root / "usr" / "lib" / "fwknopd-uci").is_dir()
    _quiet(scratch.maintainer("postrm"))
    assert not (scratch.root / "usr" / "lib" / "fwknopd-uci").exists()
    assert (scratch.root / "etc" / "init.d" / "fwknopd").exists()  # opkg's job, not postrm's


# --- DEPENDS ------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """Top-level absolute imports of a module, outside `if TYPE_CHECKING:`."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found - {"__future__", "fwknopd_uci"}


def _makefile_mapping() -> dict[str, str]:
    """The `import -> package` rows of the table in openwrt/Makefile's DEPENDS comment."""
    text = MAKEFILE.read_text()
    assert re.search(r"^#   \(all other stdlib modules\) +python3-light$", text, re.MULTILINE)
    return dict(re.findall(r"^#   ([A-Za-z_]\w*) +(python3-[\w-]+)$", text, re.MULTILINE))


def test_ipk_depends_are_exactly_what_the_code_imports(ipk: Ipk) -> None:
    """Every import of the installed code maps to a DEPENDS entry, and nothing more.

    Scans src/fwknopd_uci (all of it is installed) without the optional
    --pcap-file module; stdlib modules outside python3-light, and every
    third-party import, need a row in the Makefile's table.
    """
    mapping = _makefile_mapping()
    needed = {"python3-light"} | NOT_PYTHON_DEPENDS
    used_rows: set[str] = set()
    for path in sorted(PACKAGE_SRC.rglob("*.py")):
        if path.relative_to(PACKAGE_SRC).as_posix() in OPTIONAL_MODULES:
            continue
        for module in _imports(path):
            where = path.relative_to(REPO)
            if module in mapping:
                needed.add(mapping[module])
                used_rows.add(module)
                if module in NOT_IN_LIGHT:
                    assert mapping[module] == NOT_IN_LIGHT[module], where
            elif module in sys.stdlib_module_names:
                assert module not in NOT_IN_LIGHT, (
                    f"{where} imports {module}: add '+{NOT_IN_LIGHT.get(module)}' to "
                    "DEPENDS and a row to the table in openwrt/Makefile")
            else:
                raise AssertionError(f"{where} imports {module}, which is not in the "
                                     "import/package table of openwrt/Makefile")
    assert used_rows == set(mapping), "rows in openwrt/Makefile that nothing imports"
    depends = ipk.fields()["Depends"].split(", ")
    assert depends[0] == "libc"
    assert sorted(depends[1:]) == sorted(needed)
    assert len(set(depends)) == len(depends)


def test_ipk_python_scripts_without_py_suffix_are_clean() -> None:
    """`ruff check scripts` skips files without .py: check the builder and wrappers here."""
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed in this venv")
    files = [BUILD_IPK, REPO / "files" / "usr" / "sbin" / "fwknopd",
             REPO / "files" / "usr" / "bin" / "fwknopd-uci"]
    done = subprocess.run([str(ruff), "check", *map(str, files)], cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
