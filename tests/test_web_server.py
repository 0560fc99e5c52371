# The standalone server (python -m fwknopd_uci.web): loopback only, the
# printed URL, the stand-in session store, Save & Apply's reload command.
# It runs as a child process on 127.0.0.1 with port 0; each test stops the
# process it started.

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from fwknopd_uci.web.__main__ import main, parse_listen

SID = "0123456789abcdef0123456789abcdef"
UCI = """config global
\toption uci_enabled '1'

config access
\toption SOURCE 'ANY'
\toption KEY_BASE64 'OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc='
"""
START_TIMEOUT = 30.0


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:0", ("127.0.0.1", 0)), ("127.1.2.3:8080", ("127.1.2.3", 8080)),
    ("[::1]:0", ("::1", 0)),
])
def test_web_server_listen_accepts_loopback(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", [
    "0.0.0.0:0", "192.0.2.1:80", "10.0.0.1:8080", "[::]:0", "[2001:db8::1]:80", "localhost:0",
    "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:-1", ":8080", "example.org:80",
])
def test_web_server_listen_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)


@pytest.mark.parametrize("listen", ["0.0.0.0:0", "192.0.2.1:8080", "[::]:0"])
def test_web_server_refuses_a_non_loopback_address(tmp_path: Path, listen: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--root", str(tmp_path), "--listen", listen])
    assert exit_info.value.code == 2
    assert "loopback" in capsys.readouterr().err


def make_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc" / "config").mkdir(parents=True)
    (root / "etc" / "config" / "fwknopd").write_text(UCI)
    store = root / "var" / "run" / "rpcd-standin.json"
    store.parent.mkdir(parents=True)
    store.write_text(json.dumps({"sessions": {SID: {
        "expires": time.time() + 3600, "access": {"luci-app-fwknopd": ["read", "write"]}}}}))
    return root


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, int, Path]]:
    root = make_root(tmp_path)
    log = tmp_path / "reload.log"
    recorder = tmp_path / "record.py"
    recorder.write_text(f"import sys\nopen({str(log)!r}, 'a').write(' '.join(sys.argv[1:]))\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "fwknopd_uci.web", "--root", str(root), "--listen",
         "127.0.0.1:0", "--reload-command", sys.executable, str(recorder), "-x", "reload"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"Settings page: http://127\.0\.0\.1:(\d+)/\n", line)
        assert match is not None, (line, process.stderr.read() if process.poll() else "")
        yield process, "127.0.0.1", int(match.group(1)), log
    finally:
        process.terminate()
        try:
            process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fetch(host: str, port: int, method: str, path: str, body: dict[str, str] | None = None,
          cookie: str | None = None) -> tuple[int, dict[str, str], str]:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookie:
        headers["Cookie"] = cookie
    try:
        connection.request(method, path, urlencode(body or {}) if body is not None else None,
                           headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def test_web_server_serves_the_page_behind_the_standin_session(
        server: tuple[subprocess.Popen[str], str, int, Path]) -> None:
    process, host, port, log = server
    status, headers, body = fetch(host, port, "GET", "/")
    assert status == 403 and 'id="login-sessionid"' in body
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert headers["X-Frame-Options"] == "SAMEORIGIN" and headers["Cache-Control"] == "no-store"
    status, headers, _ = fetch(host, port, "POST", "/login", {"sessionid": SID})
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie == f"fwknopd_sid={SID}"
    status, _, page = fetch(host, port, "GET", "/", cookie=cookie)
    assert status == 200 and 'id="access-0"' in page
    status, headers, css = fetch(host, port, "GET", "/static/style.css", cookie=cookie)
    assert status == 200 and headers["Content-Type"].startswith("text/css") and ".cbi-value" in css
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert token is not None
    status, _, applied = fetch(host, port, "POST", "/", {
        "csrf_token": token.group(1), "action": "apply", "uci_enabled": "1",
        "access.0.OPEN_PORTS": "tcp/22", "config.ENABLE_NAT_DNS": "Y"}, cookie=cookie)
    assert status == 200, applied
    assert "Saved and applied." in applied
    assert log.read_text() == "-x reload"
    assert process.poll() is None


def test_web_server_stops_on_sigterm(
        server: tuple[subprocess.Popen[str], str, int, Path]) -> None:
    process = server[0]
    process.terminate()
    assert process.wait(timeout=START_TIMEOUT) == 0
