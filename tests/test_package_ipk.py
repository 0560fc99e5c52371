# The two .ipk files that scripts/build-ipk makes from openwrt/Makefile
# (fwknopd-uci and luci-app-fwknopd-uci), and what happens when they are
# installed.
#
# Built once per module into a temporary directory. The archive tests read
# them as opkg would (outer gzip'd tar, then control.tar.gz and data.tar.gz).
# The install tests unpack fwknopd-uci alone, or both into one scratch root,
# the way opkg does (files, plus /usr/lib/opkg/info/<package>.*), then run
# the maintainer scripts as an image build does: postinst and prerm with
# IPKG_INSTROOT set, with stand-ins for /lib/functions.sh (default_postinst,
# default_prerm) and /etc/rc.common at the boundary openwrt.md 5 documents,
# and the uci-defaults script the way the first boot runs it, with the real
# fwknopd-uci tool from the unpacked package. The settings page's CGI runs
# from the scratch root as uhttpd would start it, with no ubus bindings and
# no `ubus` command, so it can never reach a real ubus socket. The live
# system branch of luci-app-fwknopd-uci's scripts runs only in a private
# mount namespace (root), with a tmpfs on /tmp and stand-ins on
# /etc/init.d. The DEPENDS tests scan each package's imports against the
# tables in openwrt/Makefile.

from __future__ import annotations

import ast
import base64
import gzip
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fwknopd_uci.web.app import SECURITY_HEADERS

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
STANDINS = TESTS / "standins"
BUILD_IPK = REPO / "scripts" / "build-ipk"
MAKEFILE = REPO / "openwrt" / "Makefile"
PACKAGE_SRC = REPO / "src" / "fwknopd_uci"
WEB_SRC = PACKAGE_SRC / "web"
LUCI_SRC = REPO / "luci"
PKG = "fwknopd-uci"
LUCI = "luci-app-fwknopd-uci"
LIB = "./usr/lib/fwknopd-uci/"
WEB = LIB + "fwknopd_uci/web/"
CGI = "./www/cgi-bin/fwknopd-settings"
SCRIPT_NAME = "/cgi-bin/fwknopd-settings"
# The LuCI glue: luci/<source> -> router path.
LUCI_FILES = {
    "root/usr/share/luci/menu.d/luci-app-fwknopd-uci.json":
        "./usr/share/luci/menu.d/luci-app-fwknopd-uci.json",
    "root/usr/share/rpcd/acl.d/luci-app-fwknopd.json":
        "./usr/share/rpcd/acl.d/luci-app-fwknopd.json",
    "htdocs/luci-static/resources/view/fwknopd-uci.js":
        "./www/luci-static/resources/view/fwknopd-uci.js",
}
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
# DEPENDS that no import stands for (openwrt/Makefile says why).
NOT_PYTHON_DEPENDS = {PKG: {"nftables-json"}, LUCI: {"luci-base", "qrencode"}}


def _sources(package: str) -> list[Path]:
    """The .py files of src/fwknopd_uci that go into ``package``."""
    files = sorted(p for p in PACKAGE_SRC.rglob("*.py") if "__pycache__" not in p.parts)
    if package == LUCI:
        return [p for p in files if p.is_relative_to(WEB_SRC)]
    return [p for p in files if not p.is_relative_to(WEB_SRC)]


def _version() -> str:
    with open(REPO / "pyproject.toml", "rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    assert isinstance(version, str)
    return version


def _build(out: Path) -> dict[str, Path]:
    """scripts/build-ipk -o out: the paths it prints, one a line, by package."""
    done = subprocess.run([sys.executable, str(BUILD_IPK), "-o", str(out)],
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    paths = [Path(line) for line in done.stdout.splitlines()]
    assert [p.name for p in paths] == [f"{name}_{_version()}-1_all.ipk" for name in (PKG, LUCI)]
    assert all(p.parent == out and p.is_file() for p in paths)
    assert sorted(out.iterdir()) == sorted(paths)
    return {PKG: paths[0], LUCI: paths[1]}


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
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ipk]:
    return {name: _open(path) for name, path in _build(tmp_path_factory.mktemp("ipk")).items()}


@pytest.fixture(scope="module")
def ipk(built: dict[str, Ipk]) -> Ipk:
    return built[PKG]


@pytest.fixture(scope="module")
def luci_ipk(built: dict[str, Ipk]) -> Ipk:
    return built[LUCI]


def test_ipk_build_is_deterministic(built: dict[str, Ipk], tmp_path: Path) -> None:
    """The same tree gives the same bytes, for both packages; the names carry
    package, version, release and all."""
    again = _build(tmp_path)
    for name, ipk in built.items():
        assert again[name].read_bytes() == ipk.path.read_bytes(), name
        assert ipk.path.name == f"{name}_{_version()}-1_all.ipk"


@pytest.mark.parametrize("name", [PKG, LUCI])
def test_ipk_outer_layout_is_what_opkg_reads(built: dict[str, Ipk], name: str) -> None:
    """A gzip'd tar of ./debian-binary, ./data.tar.gz, ./control.tar.gz (ipkg-build)."""
    ipk = built[name]
    assert ipk.path.read_bytes()[:2] == b"\x1f\x8b"
    assert [m.name for m in ipk.outer] == ["./debian-binary", "./data.tar.gz",
                                           "./control.tar.gz"]
    assert ipk.parts["./debian-binary"] == b"2.0\n"
    for part in ("./data.tar.gz", "./control.tar.gz"):
        assert ipk.parts[part][:2] == b"\x1f\x8b"
        assert gzip.decompress(ipk.parts[part])  # a valid gzip stream
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
    _check_scripts(ipk)


def _check_scripts(ipk: Ipk) -> dict[str, str]:
    """The SDK's wrappers plus the package's own postinst and postrm, valid sh."""
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
    return scripts


def test_luci_ipk_control_fields(luci_ipk: Ipk, ipk: Ipk) -> None:
    """luci-app-fwknopd-uci: its own name, section and conflicts, no PROVIDES
    leaked from fwknopd-uci, the same source, version and maintainer."""
    fields = luci_ipk.fields()
    base = ipk.fields()
    assert fields["Package"] == LUCI
    assert fields["Version"] == base["Version"] == f"{_version()}-1"
    assert fields["Architecture"] == "all"
    assert fields["Section"] == "luci"
    assert fields["Conflicts"] == "luci-app-fwknopd"
    assert "Provides" not in fields
    assert fields["Depends"].split(", ")[:2] == ["libc", PKG]
    for same in ("Source", "SourceName", "License", "LicenseFiles", "Maintainer"):
        assert fields[same] == base[same], same
    assert fields["SourceName"] == PKG
    assert fields["Description"].count("\n") >= 1
    size = sum(len(content) for info, content in luci_ipk.data.values() if info.isfile())
    assert fields["Installed-Size"] == str(size)
    assert "./conffiles" not in luci_ipk.control
    scripts = _check_scripts(luci_ipk)
    for name in ("./postinst-pkg", "./postrm"):
        assert "/etc/init.d/rpcd reload" in scripts[name], name


def test_ipk_data_tree_has_exactly_the_package(ipk: Ipk) -> None:
    """root:root, right modes, .py sources of src/fwknopd_uci only (no caches, no tests)."""
    assert all(i.uid == 0 and i.gid == 0 and i.uname == "root" and i.gname == "root"
               for i, _ in ipk.data.values())
    assert all(i.isfile() or i.isdir() for i, _ in ipk.data.values())
    assert all(i.mode == 0o755 for i, _ in ipk.data.values() if i.isdir())
    files = ipk.files()
    lib = LIB
    python = {n for n in files if n.startswith(lib)}
    expected_python = {lib + p.relative_to(PACKAGE_SRC.parent).as_posix()
                       for p in _sources(PKG)}
    assert python == expected_python
    for name in python:
        info, content = files[name]
        assert info.mode == 0o644
        assert content == (PACKAGE_SRC.parent / name.removeprefix(lib)).read_bytes()
    assert not [n for n in ipk.data if n.startswith(WEB.removesuffix("/"))]  # web/: luci-app
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


def test_luci_ipk_data_tree_has_exactly_the_page(luci_ipk: Ipk, ipk: Ipk) -> None:
    """web/ (modules, templates, CSS), the CGI wrapper 0755 and the LuCI glue
    at their router paths; root:root; no file that fwknopd-uci also has."""
    assert all(i.uid == 0 and i.gid == 0 and i.uname == "root" and i.gname == "root"
               for i, _ in luci_ipk.data.values())
    assert all(i.isfile() or i.isdir() for i, _ in luci_ipk.data.values())
    assert all(i.mode == 0o755 for i, _ in luci_ipk.data.values() if i.isdir())
    files = luci_ipk.files()
    page = {WEB + p.relative_to(WEB_SRC).as_posix(): p for p in
            [*_sources(LUCI), *sorted((WEB_SRC / "templates").glob("*.html")),
             WEB_SRC / "static" / "style.css"]}
    assert {n for n in files if n.startswith(WEB)} == set(page)
    assert {WEB + "templates/page.html", WEB + "templates/login.html",
            WEB + "static/style.css", WEB + "cgi.py", WEB + "app.py"} <= set(page)
    for name, source in page.items():
        assert files[name][0].mode == 0o644, name
        assert files[name][1] == source.read_bytes(), name
    assert not [n for n in luci_ipk.data if "__pycache__" in n or n.endswith(".pyc")]
    others = {n: files[n] for n in files if not n.startswith(WEB)}
    assert set(others) == {CGI, *LUCI_FILES.values()}
    assert others[CGI][0].mode == 0o755
    assert others[CGI][1] == (REPO / "files" / CGI.removeprefix("./")).read_bytes()
    assert others[CGI][1].startswith(b"#!/usr/bin/python3\n")
    for source, target in LUCI_FILES.items():
        assert others[target][0].mode == 0o644, target
        assert others[target][1] == (LUCI_SRC / source).read_bytes(), target
    assert not set(files) & set(ipk.files())


# --- installing ---------------------------------------------------------------------------


class Scratch:
    """A root the .ipk files are installed into, as opkg would on an image build."""

    def __init__(self, root: Path, *ipks: Ipk) -> None:
        self.root = root
        self.info = root / "usr" / "lib" / "opkg" / "info"
        self.log = root.parent / "standin.log"
        self.log.write_text("")
        root.mkdir()
        self.info.mkdir(parents=True)
        for ipk in ipks:
            self._unpack(ipk)
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

    def _unpack(self, ipk: Ipk) -> None:
        package = ipk.fields()["Package"]
        listed = []
        for name, (info, content) in sorted(ipk.data.items()):
            target = self.root / name.removeprefix("./")
            if info.isdir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                assert not target.exists(), f"{name}: already installed by another package"
                target.write_bytes(content)
                target.chmod(info.mode)
                listed.append(name.removeprefix("."))
        for name, (info, content) in ipk.control.items():
            if info.isfile():
                target = self.info / f"{package}.{name.removeprefix('./')}"
                target.write_bytes(content)
                target.chmod(info.mode)
        (self.info / f"{package}.list").write_text("".join(f"{n}\n" for n in listed))

    def remove_files(self, package: str) -> None:
        """What opkg does between prerm and postrm: delete the listed files."""
        for line in (self.info / f"{package}.list").read_text().splitlines():
            (self.root / line.lstrip("/")).unlink()

    def env(self, **extra: str) -> dict[str, str]:
        path = f"{STANDINS}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}" \
               f"{os.environ.get('PATH', '')}"
        return {**os.environ, "PATH": path, "STANDIN_LOG": str(self.log),
                "STANDINS": str(STANDINS), **extra}

    def maintainer(self, script: str, package: str = PKG,
                   **extra: str) -> subprocess.CompletedProcess[str]:
        """Run info/PACKAGE.SCRIPT with IPKG_INSTROOT set (an image build)."""
        path = self.info / f"{package}.{script}"
        return subprocess.run(["sh", str(path)],
                              env=self.env(IPKG_INSTROOT=str(self.root), **extra),
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
    """fwknopd-uci alone."""
    yield Scratch(tmp_path / "root", ipk)


@pytest.fixture
def scratch_both(ipk: Ipk, luci_ipk: Ipk, tmp_path: Path) -> Iterator[Scratch]:
    """fwknopd-uci and luci-app-fwknopd-uci in one root (opkg's order: the
    dependency first)."""
    yield Scratch(tmp_path / "root", ipk, luci_ipk)


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
    assert len(caches) == len(_sources(PKG))

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


def _tree(root: Path) -> dict[str, int]:
    """Every path below root with its mode (to see that nothing changed)."""
    return {p.relative_to(root).as_posix(): p.lstat().st_mode for p in root.rglob("*")}


def test_luci_ipk_install_beside_fwknopd_uci_on_an_image_build(scratch_both: Scratch) -> None:
    """Both packages in one root: no file owned twice (Scratch checks), both
    postinst quiet, luci-app's does nothing with IPKG_INSTROOT set, and the
    first boot byte-compiles web/ with the rest of /usr/lib/fwknopd-uci."""
    root = scratch_both.root
    _quiet(scratch_both.maintainer("postinst"))
    before = _tree(root)
    _quiet(scratch_both.maintainer("postinst", LUCI))
    assert _tree(root) == before
    assert scratch_both.log.read_text() == f"default_postinst {PKG}\ndefault_postinst {LUCI}\n"
    assert [p.name for p in (root / "etc" / "rc.d").iterdir()] == ["S95fwknopd"]

    for name in (CGI, *LUCI_FILES.values()):
        assert (root / name).is_file(), name
    assert stat.S_IMODE((root / CGI).stat().st_mode) == 0o755
    web = root / WEB
    assert (web / "templates" / "login.html").is_file()
    assert (web / "static" / "style.css").is_file()

    _quiet(scratch_both.first_boot_uci_defaults())
    lib = root / LIB
    assert len(list(lib.rglob("*.pyc"))) == len(_sources(PKG)) + len(_sources(LUCI))
    assert len(list(web.rglob("*.pyc"))) == len(_sources(LUCI))


def _cgi_env(root: Path, bare: Path, **extra: str) -> dict[str, str]:
    """What uhttpd passes a CGI for `GET /cgi-bin/fwknopd-settings/` (no cookie),
    with the router's paths under root, and PATH a directory with no `ubus`."""
    return {"PATH": str(bare), "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_SOFTWARE": "uhttpd",
            "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "192.0.2.1",
            "SERVER_ADDR": "192.0.2.1", "SERVER_PORT": "80", "REMOTE_ADDR": "192.0.2.2",
            "REMOTE_PORT": "50000", "DOCUMENT_ROOT": str(root / "www"),
            "SCRIPT_NAME": SCRIPT_NAME, "SCRIPT_FILENAME": str(root / CGI),
            "REQUEST_METHOD": "GET", "REQUEST_URI": f"{SCRIPT_NAME}/", "PATH_INFO": "/",
            "QUERY_STRING": "", "REDIRECT_STATUS": "200", "HTTP_HOST": "192.0.2.1", **extra}


def _run_cgi(root: Path, env: dict[str, str],
             argv: list[str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv or [sys.executable, str(root / CGI)], env=env, input=b"",
                          cwd=root / "www" / "cgi-bin", capture_output=True,
                          timeout=TIMEOUT, check=False)


def _cgi_response(out: bytes) -> tuple[list[tuple[str, str]], bytes]:
    head, sep, body = out.partition(b"\r\n\r\n")
    assert sep, out[:200]
    headers = [tuple(line.split(": ", 1)) for line in head.decode("latin-1").split("\r\n")]
    assert all(len(h) == 2 for h in headers), headers
    return [(h[0], h[1]) for h in headers], body


def test_luci_ipk_cgi_refuses_without_a_session(scratch_both: Scratch, tmp_path: Path) -> None:
    """The installed /www/cgi-bin/fwknopd-settings, run as uhttpd would (with
    this venv's python), answers 403 with the login page and the security
    headers; with a session cookie but no ubus bindings and no `ubus`
    command it still refuses, and does not crash."""
    root = scratch_both.root
    bare = tmp_path / "bin"
    bare.mkdir()
    env = _cgi_env(root, bare)
    # Nothing in this environment can reach a ubus socket: no command, no bindings.
    assert shutil.which("ubus", path=env["PATH"]) is None
    probe = _run_cgi(root, env, [sys.executable, "-c",
                                 ("import importlib.util\n"
                                  "print(importlib.util.find_spec('ubus') is None)")])
    assert probe.stdout == b"True\n", "python ubus bindings are importable here"

    done = _run_cgi(root, env)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    headers, body = _cgi_response(done.stdout)
    assert headers[0] == ("Status", "403 Forbidden")
    for header in SECURITY_HEADERS:
        assert header in headers, header
    found = dict(headers)
    assert found["Content-Type"] == "text/html; charset=utf-8"
    assert found["Content-Length"] == str(len(body))
    assert "Set-Cookie" not in found
    page = body.decode()
    # login.html and base.html, rendered from the unpacked templates/
    assert f'action="{SCRIPT_NAME}/login"' in page
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Firewall Knock Operator Daemon</title>" in page

    # A well-formed but unknown session: asking rpcd fails (no ubus here), so it refuses.
    sid = "0123456789abcdef0123456789abcdef"
    done = _run_cgi(root, _cgi_env(root, bare, HTTP_COOKIE=f"fwknopd_sid={sid}"))
    assert done.returncode == 0, done.stderr.decode()
    headers, body = _cgi_response(done.stdout)
    assert headers[0] == ("Status", "403 Forbidden")
    for header in SECURITY_HEADERS:
        assert header in headers, header
    cookie = dict(headers)["Set-Cookie"]
    assert cookie.startswith("fwknopd_sid=;") and "Max-Age=0" in cookie
    said = done.stderr.decode()
    assert "session check failed: no 'ubus' command" in said
    assert "Traceback" not in said and sid not in said

    # The code that answered is the unpacked package, not the checkout.
    where = _run_cgi(root, env, [sys.executable, "-c", (
        "import runpy, sys\n"
        f"runpy.run_path({str(root / CGI)!r}, run_name='__main__')\n"
        "sys.stderr.write(sys.modules['fwknopd_uci.web.cgi'].__file__)")])
    assert where.returncode == 0, where.stderr.decode()
    assert Path(where.stderr.decode()).resolve() == (root / WEB / "cgi.py").resolve()


def test_luci_ipk_remove_on_an_image_build(scratch_both: Scratch) -> None:
    """luci-app-fwknopd-uci goes, fwknopd-uci stays whole and runs: prerm
    touches no service, postrm removes what opkg leaves of web/ (its .pyc),
    but not on an upgrade."""
    root = scratch_both.root
    _quiet(scratch_both.maintainer("postinst"))
    _quiet(scratch_both.maintainer("postinst", LUCI))
    _quiet(scratch_both.first_boot_uci_defaults())
    web = root / WEB
    assert list(web.rglob("*.pyc"))
    base = _tree(root / LIB)

    _quiet(scratch_both.maintainer("prerm", LUCI))
    assert (root / "etc" / "rc.d" / "S95fwknopd").is_symlink()
    scratch_both.remove_files(LUCI)
    _quiet(scratch_both.maintainer("postrm", LUCI, PKG_UPGRADE="1"))
    assert list(web.rglob("*.pyc"))
    _quiet(scratch_both.maintainer("postrm", LUCI))
    assert not web.exists()
    assert _tree(root / LIB) == {n: m for n, m in base.items()
                                 if not n.startswith("fwknopd_uci/web")}
    assert not (root / CGI).exists()
    assert scratch_both.log.read_text().splitlines()[-1] == f"default_prerm {LUCI}"
    done = scratch_both.run_python(str(root / "usr" / "sbin" / "fwknopd"), "-V")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"fwknopd server {_version()}")


# The live-system branch of luci-app-fwknopd-uci's postinst-pkg and postrm,
# in a private mount namespace: /etc/init.d is a directory of stand-ins
# (rpcd, python3, the script itself) and /tmp a fresh tmpfs holding LuCI's
# caches and one other file. First with IPKG_INSTROOT set (nothing may
# happen), then without. The namespace goes away with the process.
LIVE = r"""
set -eu
mount --bind "$1" /etc/init.d
mount -t tmpfs fwkt-tmp /tmp
seed() {
	: >/tmp/luci-indexcache
	: >/tmp/luci-indexcache.0123abcd.json
	mkdir -p /tmp/luci-modulecache
	: >/tmp/luci-modulecache/luci.ut
	: >/tmp/keep-me
}
seed
IPKG_INSTROOT=/etc/init.d/instroot PATH="/etc/init.d:$PATH" sh "/etc/init.d/$2"
echo "instroot" $(ls -A /tmp)
PATH="/etc/init.d:$PATH" sh "/etc/init.d/$2"
echo "live" $(ls -A /tmp)
"""
STANDIN = '#!/bin/sh\necho "{name} $*" >>/etc/init.d/calls.log\n'


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None
                    or not Path("/etc/init.d").is_dir(),
                    reason="needs root, unshare and an /etc/init.d to mount over")
@pytest.mark.parametrize("script", ["postinst-pkg", "postrm"])
def test_luci_ipk_scripts_on_a_live_system(luci_ipk: Ipk, tmp_path: Path,
                                           script: str) -> None:
    """Live system: LuCI's menu caches go, rpcd reloads (postinst also
    byte-compiles web/); with IPKG_INSTROOT set nothing happens."""
    if script == "postrm" and Path("/usr/lib/fwknopd-uci").exists():
        pytest.skip("this host has /usr/lib/fwknopd-uci: the live postrm would remove web/")
    stand = tmp_path / "initd"
    (stand / "instroot").mkdir(parents=True)
    for name in ("rpcd", "python3"):
        (stand / name).write_text(STANDIN.format(name=name))
        (stand / name).chmod(0o755)
    (stand / script).write_bytes(luci_ipk.control[f"./{script}"][1])
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "--",
                           "sh", "-c", LIVE, "sh", str(stand), script],
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    lines = {line.split()[0]: set(line.split()[1:]) for line in done.stdout.splitlines()}
    assert lines["instroot"] == {"keep-me", "luci-indexcache", "luci-indexcache.0123abcd.json",
                                 "luci-modulecache"}
    assert lines["live"] == {"keep-me"}
    calls = (stand / "calls.log").read_text().splitlines()
    compile_web = ("python3 -m compileall -q --invalidation-mode checked-hash "
                   "/usr/lib/fwknopd-uci/fwknopd_uci/web")
    assert calls == ([compile_web] if script == "postinst-pkg" else []) + ["rpcd reload"]
    assert list((stand / "instroot").iterdir()) == []


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


_TABLE_HEAD = re.compile(r"#   ([a-z][\w-]*) imports +package")
_TABLE_ROW = re.compile(r"#   (\([^()]*\)|[A-Za-z_]\w*) +([a-z0-9][\w.+-]*)")


def _makefile_tables() -> dict[str, dict[str, str]]:
    """The `import -> package` tables in openwrt/Makefile's DEPENDS comment.

    A table starts at a line `#   <package> imports   package` and takes the
    rows right below it; the row in parentheses is its catch-all.
    """
    tables: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in MAKEFILE.read_text().splitlines():
        if head := _TABLE_HEAD.fullmatch(line):
            assert head[1] not in tables, f"two tables for {head[1]}"
            current = tables[head[1]] = {}
        elif current is not None and (row := _TABLE_ROW.fullmatch(line)):
            assert row[1] not in current, f"two rows for {row[1]}"
            current[row[1]] = row[2]
        else:
            current = None
    assert set(tables) == {PKG, LUCI}
    return tables


def _catch_all(table: dict[str, str]) -> str:
    rows = [table.pop(name) for name in [n for n in table if n.startswith("(")]]
    assert len(rows) == 1, "a table needs one catch-all row"
    return rows[0]


def _scan(package: str, table: dict[str, str],
          inherited: dict[str, str]) -> tuple[set[str], set[str], set[str]]:
    """The imports of ``package``'s modules against its table.

    Returns the packages its rows stand for, the rows used, and the packages
    that ``inherited`` (the rows of a package it depends on) covers.
    """
    needed: set[str] = set()
    used: set[str] = set()
    through: set[str] = set()
    for path in _sources(package):
        if path.relative_to(PACKAGE_SRC).as_posix() in OPTIONAL_MODULES:
            continue
        where = path.relative_to(REPO)
        for module in _imports(path):
            if module in table:
                needed.add(table[module])
                used.add(module)
                if module in NOT_IN_LIGHT:
                    assert table[module] == NOT_IN_LIGHT[module], where
            elif module in inherited:
                through.add(inherited[module])
            elif module in sys.stdlib_module_names:
                assert module not in NOT_IN_LIGHT, (
                    f"{where} imports {module}: add '+{NOT_IN_LIGHT.get(module)}' to "
                    f"DEPENDS of {package} and a row to its table in openwrt/Makefile")
            else:
                raise AssertionError(f"{where} imports {module}, which is not in the "
                                     f"{package} import/package table of openwrt/Makefile")
    assert used == set(table), f"rows of the {package} table that nothing imports"
    return needed, used, through


def _depends(ipk: Ipk) -> list[str]:
    depends = ipk.fields()["Depends"].split(", ")
    assert depends[0] == "libc"
    assert len(set(depends)) == len(depends)
    return depends[1:]


def test_ipk_depends_are_exactly_what_the_code_imports(ipk: Ipk) -> None:
    """Every import of fwknopd-uci's code maps to a DEPENDS entry, and nothing more.

    Scans src/fwknopd_uci without web/ (luci-app-fwknopd-uci's) and without
    the optional --pcap-file module; stdlib modules outside python3-light,
    and every third-party import, need a row in the Makefile's table.
    """
    table = _makefile_tables()[PKG]
    assert _catch_all(table) == "python3-light"
    needed, _, _ = _scan(PKG, table, {})
    assert sorted(_depends(ipk)) == sorted(needed | {"python3-light"} | NOT_PYTHON_DEPENDS[PKG])


def test_luci_ipk_depends_are_exactly_what_the_page_imports(luci_ipk: Ipk, ipk: Ipk) -> None:
    """web/'s imports: its own table's packages, plus fwknopd-uci for the rest.

    What fwknopd-uci's table or python3-light covers (logging, the stdlib)
    comes through +fwknopd-uci and is not repeated; a row of the page's
    table that nothing in web/ imports is an error.
    """
    tables = _makefile_tables()
    table, base = tables[LUCI], tables[PKG]
    assert _catch_all(table) == PKG
    _catch_all(base)
    needed, _, through = _scan(LUCI, table, base)
    assert needed == {"python3-jinja2", "python3-urllib"}
    assert sorted(_depends(luci_ipk)) == sorted(needed | {PKG} | NOT_PYTHON_DEPENDS[LUCI])
    assert through <= set(_depends(ipk)), "web/ needs what fwknopd-uci does not depend on"
    assert not needed & set(_depends(ipk)), "a DEPENDS of fwknopd-uci repeated"


def test_ipk_python_scripts_without_py_suffix_are_clean() -> None:
    """`ruff check scripts` skips files without .py: check the builder and wrappers here."""
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed in this venv")
    files = [BUILD_IPK, REPO / "files" / "usr" / "sbin" / "fwknopd",
             REPO / "files" / "usr" / "bin" / "fwknopd-uci",
             REPO / "files" / CGI.removeprefix("./")]
    done = subprocess.run([str(ruff), "check", *map(str, files)], cwd=REPO,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
