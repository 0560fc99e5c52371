# The uhttpd CGI entry (web/cgi.py): one request per process from the CGI
# environment, sessions checked with rpcd's `session access`.
#
# rpcd is replaced at the ubus boundary by a stand-in python `ubus` module
# put first on PYTHONPATH (the bindings the CGI prefers), which records each
# call; so no test ever reaches a real ubus socket, whatever is installed.

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fwknopd_uci.web.cgi import build_app

SID = "0123456789abcdef0123456789abcdef"
SCRIPT = "/cgi-bin/fwknopd-settings"
STANDIN = '''\
"""Stands in for the python ubus bindings and rpcd's session object (tests only)."""
import json
import os

def _log(*item):
    with open(os.environ["UBUS_STANDIN_LOG"], "a") as handle:
        handle.write(json.dumps(item) + "\\n")

def connect(*args):
    _log("connect", *args)

def call(obj, method, args):
    _log("call", obj, method, args)
    if obj == "session" and method == "access" \\
            and args.get("ubus_rpc_session") == os.environ["UBUS_STANDIN_SID"]:
        return [{"access": args.get("function") in os.environ["UBUS_STANDIN_GRANTS"].split()}]
    raise RuntimeError("Failed to call: Not found")

def disconnect():
    pass
'''


def run_cgi(tmp_path: Path, method: str, path: str, body: str = "", *, cookie: str = "",
            https: bool = False, grants: str = "read write") -> tuple[dict[str, str], str, list]:
    standin = tmp_path / "standin"
    standin.mkdir(exist_ok=True)
    (standin / "ubus.py").write_text(STANDIN)
    log = tmp_path / "ubus.log"
    log.unlink(missing_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "PYTHONPATH": os.pathsep.join([str(standin), *sys.path]),
           "UBUS_STANDIN_LOG": str(log), "UBUS_STANDIN_SID": SID,
           "UBUS_STANDIN_GRANTS": grants, "GATEWAY_INTERFACE": "CGI/1.1",
           "REQUEST_METHOD": method, "SCRIPT_NAME": SCRIPT, "PATH_INFO": path,
           "SERVER_NAME": "192.0.2.1", "SERVER_PORT": "443" if https else "80",
           "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_LENGTH": str(len(body.encode())),
           "CONTENT_TYPE": "application/x-www-form-urlencoded"}
    if cookie:
        env["HTTP_COOKIE"] = cookie
    if https:
        env["HTTPS"] = "on"
    done = subprocess.run([sys.executable, "-c", "from fwknopd_uci.web.cgi import main; main()"],
                          input=body.encode(), capture_output=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    head, _, content = done.stdout.decode().partition("\r\n\r\n")
    headers: dict[str, str] = {}
    for line in head.split("\r\n"):
        name, _, value = line.partition(": ")
        headers.setdefault(name, value)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return headers, content, calls


def test_web_cgi_refuses_a_request_without_a_session(tmp_path: Path) -> None:
    headers, body, calls = run_cgi(tmp_path, "GET", "/")
    assert headers["Status"] == "403 Forbidden"
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert 'action="/cgi-bin/fwknopd-settings/login"' in body
    assert calls == []  # no session id: nothing was asked


def test_web_cgi_login_asks_rpcd_and_sets_the_cookie(tmp_path: Path) -> None:
    headers, _, calls = run_cgi(tmp_path, "POST", "/login", f"sessionid={SID}", https=True)
    assert headers["Status"] == "303 See Other"
    assert headers["Location"] == f"{SCRIPT}/"
    assert headers["Set-Cookie"] == (f"fwknopd_sid={SID}; HttpOnly; SameSite=Strict; "
                                     f"Path={SCRIPT}; Secure")
    assert ["call", "session", "access", {"ubus_rpc_session": SID, "scope": "access-group",
                                          "object": "luci-app-fwknopd", "function": "read"}] \
        in calls


def test_web_cgi_unknown_session_is_refused(tmp_path: Path) -> None:
    other = "f" * 32
    headers, _, calls = run_cgi(tmp_path, "GET", "/", cookie=f"fwknopd_sid={other}")
    assert headers["Status"] == "403 Forbidden"
    assert next(c for c in calls if c[0] == "call")[3]["ubus_rpc_session"] == other
    headers, _, _ = run_cgi(tmp_path, "POST", "/login", f"sessionid={SID}", grants="")
    assert headers["Status"] == "403 Forbidden"


def test_web_cgi_app_on_a_root_uses_the_router_paths(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """build_app(root): /etc/config/fwknopd and the secret under the root."""
    root = tmp_path / "root"
    (root / "etc" / "config").mkdir(parents=True)
    (root / "etc" / "config" / "fwknopd").write_text("config access\n\toption SOURCE 'ANY'\n")
    standin = tmp_path / "standin"
    standin.mkdir()
    (standin / "ubus.py").write_text(STANDIN)
    monkeypatch.syspath_prepend(str(standin))
    monkeypatch.delitem(sys.modules, "ubus", raising=False)
    monkeypatch.setenv("UBUS_STANDIN_LOG", str(tmp_path / "ubus.log"))
    monkeypatch.setenv("UBUS_STANDIN_SID", SID)
    monkeypatch.setenv("UBUS_STANDIN_GRANTS", "read")
    app = build_app(root)
    assert app.config.uci_path == root / "etc" / "config" / "fwknopd"
    assert app.config.secret_path == root / "etc" / "fwknopd-uci-web.secret"
    assert tuple(app.config.reload_command) == ("/etc/init.d/fwknopd", "reload")
    assert app.config.sessions.access(SID, "luci-app-fwknopd", "read")
    assert not app.config.sessions.access(SID, "luci-app-fwknopd", "write")
