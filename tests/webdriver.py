# Helpers for the tests that drive the settings page (fwknopd_uci.web) with a
# real browser and read its QR codes with a real decoder.
#
# - PageServer: the standalone page server (`python -m fwknopd_uci.web`) as a
#   subprocess in a scratch root, listening on 127.0.0.1 with port 0; the
#   rpcd stand-in's session file and a recording reload command.
# - browser(): Debian's headless Chromium, driven by Selenium through
#   Debian's chromedriver (given by path, so Selenium Manager never runs and
#   nothing is downloaded).
# - zbar_decode() / rasterise_svg(): zbarimg and rsvg-convert.
#
# Safety: the server binds to 127.0.0.1 only. Chromium gets flags that stop
# its background traffic (sync, component updates, QUIC, networking
# services), a host resolver rule that resolves no name (only 127.0.0.1
# passes), and no proxy;
# open_page() refuses any URL that is not on 127.0.0.1.

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pytest

if TYPE_CHECKING:
    from selenium.webdriver import Chrome as WebDriver

__all__ = [
    "ARTIFACTS",
    "CGI_PREFIX",
    "CHROMEDRIVER",
    "CHROMIUM",
    "LUCI_PAGE",
    "VIEW_JS",
    "WINDOW",
    "LuciFrameServer",
    "PageServer",
    "browser",
    "open_page",
    "rasterise_svg",
    "require_browser",
    "require_tool",
    "zbar_decode",
]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"  # git-ignored
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

SERVER_START_TIMEOUT = 20.0  # seconds until the server prints its address
TOOL_TIMEOUT = 30  # seconds for one zbarimg / rsvg-convert run
PAGE_TIMEOUT = 20  # seconds for one page load in the browser
WINDOW = (1280, 1024)
_ADDRESS = re.compile(r"Settings page: (http://127\.0\.0\.1:[0-9]+/)")

# The flags that keep Chromium quiet and local (see the header).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--force-device-scale-factor=1",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)


def require_tool(name: str) -> str:
    """The path of a command, or skip the test saying which one is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def require_browser() -> None:
    """Skip unless Debian's chromium, chromedriver and selenium are present."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            pytest.skip(f"{path} not found (Debian package {package})")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed in this Python")


@contextmanager
def browser() -> Iterator[WebDriver]:
    """A fresh headless Chromium (own profile directory), quit afterwards."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="fwknopd-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        # Console messages (CSP violations, script errors) for get_log().
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            driver.set_page_load_timeout(PAGE_TIMEOUT)
            yield driver
        finally:
            driver.quit()


def open_page(driver: WebDriver, url: str) -> None:
    """Load a URL in the browser; only 127.0.0.1 URLs are allowed."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1":
        raise AssertionError(f"refusing to open a non-loopback URL: {url!r}")
    driver.get(url)


def zbar_decode(png: bytes) -> list[bytes]:
    """The QR code zbarimg finds in a PNG, as its exact bytes; [] for none.

    -Sbinary keeps the bytes as encoded: without it zbarimg guesses a
    character set and re-encodes (UTF-8 text comes out as mojibake) and
    adds a newline. In binary mode several symbols would run together, so
    callers pass images that hold one QR code.
    """
    zbarimg = require_tool("zbarimg")
    with tempfile.TemporaryDirectory(prefix="fwknopd-zbar-") as scratch:
        image = Path(scratch) / "qr.png"
        image.write_bytes(png)
        proc = subprocess.run(
            [zbarimg, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", "-Sbinary", str(image)],
            capture_output=True, timeout=TOOL_TIMEOUT, check=False)
    # Exit status 4: no symbol found; other non-zero values are real errors.
    if proc.returncode == 4:
        return []
    if proc.returncode != 0:
        raise AssertionError(f"zbarimg failed ({proc.returncode}): {proc.stderr!r}")
    return [proc.stdout]


def rasterise_svg(svg: bytes, *, zoom: int = 4) -> bytes:
    """A PNG of an SVG document (white background), made by rsvg-convert."""
    rsvg = require_tool("rsvg-convert")
    proc = subprocess.run([rsvg, "--zoom", str(zoom), "--background-color", "white"],
                          input=svg, capture_output=True, timeout=TOOL_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"rsvg-convert failed ({proc.returncode}): {proc.stderr!r}")
    return proc.stdout


@dataclass
class PageServer:
    """The standalone settings page in a scratch root.

    The root gets etc/config/fwknopd (from `uci`), var/run/rpcd-standin.json
    (the sessions) and a reload script that appends one line to
    `reload_log` per run. start() launches the server; stop() kills it.
    """

    root: Path
    uci: bytes
    sessions: Mapping[str, Sequence[str]] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    url: str = ""

    @property
    def uci_path(self) -> Path:
        return self.root / "etc" / "config" / "fwknopd"

    @property
    def reload_log(self) -> Path:
        return self.root / "reload.log"

    @property
    def server_log(self) -> Path:
        return self.root / "server.log"

    def write_sessions(self, sessions: Mapping[str, Sequence[str]],
                       *, expires: float | None = None) -> None:
        """Replace the rpcd stand-in's sessions: sid -> access rights."""
        until = int(time.time() + 3600 if expires is None else expires)
        doc = {"sessions": {sid: {"expires": until,
                                  "access": {"luci-app-fwknopd": list(rights)}}
                            for sid, rights in sessions.items()}}
        path = self.root / "var" / "run" / "rpcd-standin.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc), encoding="utf-8")

    def start(self, extra_args: Sequence[str] = ()) -> str:
        self.uci_path.parent.mkdir(parents=True, exist_ok=True)
        self.uci_path.write_bytes(self.uci)
        self.write_sessions(self.sessions)
        script = self.root / "record-reload.sh"
        script.write_text(f'#!/bin/sh\necho "reload $*" >> "{self.reload_log}"\n',
                          encoding="utf-8")
        script.chmod(0o755)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        argv = [sys.executable, "-m", "fwknopd_uci.web", "--root", str(self.root),
                "--listen", "127.0.0.1:0", *extra_args, "--reload-command", str(script)]
        with self.server_log.open("wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env, cwd=self.root)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            found = _ADDRESS.search(self.log_text())
            if found:
                self.url = found.group(1)
                return self.url
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"settings page server did not start:\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.server_log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def reloads(self) -> list[str]:
        try:
            return self.reload_log.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- LuCI's view around the page ------------------------------------------

CGI_PREFIX = "/cgi-bin/fwknopd-settings"
LUCI_PAGE = "/cgi-bin/luci/admin/services/fwknopd"
VIEW_JS = REPO / "luci" / "htdocs" / "luci-static" / "resources" / "view" / "fwknopd-uci.js"

# A stand-in for the few parts of LuCI the view uses: L.env, E(), _() and
# view.extend(). Like LuCI's loader, it compiles the view file as the body
# of a function and calls render(); the nodes go into <div id="view">.
_HARNESS_JS = r"""
'use strict';
window.L = { env: { sessionid: document.body.dataset.sid, cgi_base: '/cgi-bin' } };
window._ = function(text) { return text; };
window.E = function(tag, attrs, children) {
	const el = document.createElement(tag);
	if (Array.isArray(attrs) || typeof attrs === 'string' || attrs instanceof Node) {
		children = attrs;
		attrs = null;
	}
	for (const [name, value] of Object.entries(attrs || {})) {
		if (value == null) continue;
		if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
		else el.setAttribute(name, value);
	}
	const add = function(child) {
		if (child == null) return;
		if (Array.isArray(child)) { child.forEach(add); return; }
		el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
	};
	add(children);
	return el;
};
const view = { extend: function(proto) { return proto; } };
fetch('/luci-static/resources/view/fwknopd-uci.js')
	.then(function(reply) { return reply.text(); })
	.then(function(source) {
		const made = new Function('view', source)(view);
		window.fwknopdView = made;
		return Promise.resolve(made.load ? made.load() : null).then(function(data) {
			return made.render(data);
		});
	})
	.then(function(node) {
		document.getElementById('view').appendChild(node);
		window.viewReady = true;
	})
	.catch(function(err) { window.viewError = String(err); });
"""

_HARNESS_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>LuCI stand-in</title></head>
<body data-sid="{sid}"><header>LuCI</header><div id="view"></div>
<script src="/harness.js"></script></body></html>
"""


@dataclass
class Request:
    method: str
    path: str
    query: str
    status: str = ""


class LuciFrameServer:
    """One loopback origin like a router's uhttpd: a LuCI stand-in page at
    LUCI_PAGE, the real view file, and the real settings app as the CGI at
    CGI_PREFIX (SCRIPT_NAME set as uhttpd sets it). Every request is
    recorded (method, path, query, status) in `requests`.

    Args:
        root: scratch root (etc/config/fwknopd, var/run/rpcd-standin.json).
        uci: the UCI file's bytes.
        sessions: sid -> access rights for the rpcd stand-in.
        luci_sid: what the LuCI page puts in L.env.sessionid.
    """

    def __init__(self, root: Path, uci: bytes, sessions: Mapping[str, Sequence[str]],
                 luci_sid: str) -> None:
        import threading
        from socketserver import ThreadingMixIn
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        from fwknopd_uci.web.session import StandinSessions
        from fwknopd_uci.web.wiring import STANDIN_PATH, router_app, under

        self.pages = PageServer(root, uci)
        self.pages.uci_path.parent.mkdir(parents=True, exist_ok=True)
        self.pages.uci_path.write_bytes(uci)
        self.pages.write_sessions(sessions)
        self.luci_sid = luci_sid
        self.requests: list[Request] = []
        self.app = router_app(root, StandinSessions(under(root, STANDIN_PATH)),
                              reload_command=("true",), firewall=False, ubus=False)

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

        class Threaded(ThreadingMixIn, WSGIServer):
            daemon_threads = True

        self.server = make_server("127.0.0.1", 0, self._dispatch, server_class=Threaded,
                                  handler_class=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def uci_path(self) -> Path:
        return self.pages.uci_path

    def _dispatch(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        path = environ.get("PATH_INFO") or "/"
        record = Request(environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING", ""))
        self.requests.append(record)

        def recording_start(status: str, headers: Any, *exc: Any) -> Any:
            record.status = status
            return start_response(status, headers, *exc)

        if path == CGI_PREFIX or path.startswith(CGI_PREFIX + "/"):
            inner = dict(environ, SCRIPT_NAME=CGI_PREFIX, PATH_INFO=path[len(CGI_PREFIX):])
            yield from self.app(inner, recording_start)
            return
        files = {
            LUCI_PAGE: ("text/html; charset=utf-8",
                        _HARNESS_HTML.format(sid=self.luci_sid).encode()),
            "/harness.js": ("text/javascript", _HARNESS_JS.encode()),
            "/luci-static/resources/view/fwknopd-uci.js": ("text/javascript",
                                                           VIEW_JS.read_bytes()),
        }
        if path not in files:
            recording_start("404 Not Found", [("Content-Type", "text/plain")])
            yield b"not here"
            return
        kind, body = files[path]
        recording_start("200 OK", [("Content-Type", kind), ("Cache-Control", "no-store")])
        yield body

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
