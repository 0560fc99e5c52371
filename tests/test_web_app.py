# The settings page at the WSGI boundary (web/app.py): sessions, CSRF, the
# security headers, save / apply / generate keys / add / remove, errors at
# their fields, escaping, the QR codes and the status panel.
#
# Each test builds the app on a scratch root with the stand-in session store
# (the boundary openwrt.md 7 documents) and fakes for the status panel and
# netifd; a browser-like form reader turns a rendered page back into the
# fields a browser would post.

from __future__ import annotations

import io
import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from ipaddress import IPv4Address
from pathlib import Path
from urllib.parse import urlencode

import pytest

from fwknopd_uci.firewall import ActiveGrant
from fwknopd_uci.openwrt.qr import qr_text
from fwknopd_uci.openwrt.uci import UciPackage, UciSection, parse
from fwknopd_uci.web import SECURITY_HEADERS, SettingsApp, StandinSessions, WebConfig
from fwknopd_uci.web.netifd import Networks
from fwknopd_uci.web.qrsvg import qr_svg
from fwknopd_uci.web.status import DaemonStatus

DATA = Path(__file__).resolve().parent / "data"
SHARED_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "uci-configs" \
    / "net_fwknop_files_fwknopd"
RW = "0123456789abcdef0123456789abcdef"
RO = "fedcba9876543210fedcba9876543210"
EXPIRED = "00000000000000000000000000000001"
OTHER_GROUP = "00000000000000000000000000000002"
KEY = "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc="
HMAC = ("bDCuE1dzt9NPFyvhejoKo29MVCryM+MhSwGzMEORSgeja5v408hzvdi9E52ibMyWYNdP1lj2bTphujX1"
        "lqQXuQ==")
NEW_KEY = "bmV3IGtleSBvZiB0aGlydHktdHdvIGJ5dGVzLCBvayE="  # 32 bytes
NEW_HMAC = ("bmV3IGhtYWMga2V5IGZvciB0aGUgdGVzdHM6IHNpeHR5LWZvdXIgYnl0ZXMgbG9uZywgbm8gbW9yZSwg"
            "b2shIQ==")  # 64 bytes
BASIC = f"""\
# A test configuration.

config global
\toption uci_enabled '1'

config network
\toption network 'wan'

config access
\toption SOURCE 'ANY'
\toption KEY_BASE64 '{KEY}'
\toption HMAC_KEY_BASE64 '{HMAC}'
\toption OPEN_PORTS 'tcp/22'

config config
\toption ENABLE_NAT_DNS 'Y'
"""


class FakeStatus:
    def __init__(self, status: DaemonStatus) -> None:
        self.value = status
        self.seen: list[UciPackage] = []

    def status(self, pkg: UciPackage) -> DaemonStatus:
        self.seen.append(pkg)
        return self.value


@dataclass
class Result:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        return found[0] if found else None

    def all_headers(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


@dataclass
class Router:
    root: Path
    app: SettingsApp
    uci: Path
    reload_log: Path
    script_name: str = ""
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, form: dict[str, str] | list[tuple[str, str]]
                | None = None, *, sid: str | None = RW, environ: dict[str, str] | None = None,
                body: bytes | None = None) -> Result:
        data = body if body is not None else urlencode(form or {}).encode()
        env = {"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": self.script_name,
               "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "wsgi.input": io.BytesIO(data),
               "CONTENT_LENGTH": str(len(data)), "wsgi.url_scheme": "http",
               "CONTENT_TYPE": "application/x-www-form-urlencoded"}
        if sid is not None:
            env["HTTP_COOKIE"] = f"fwknopd_sid={sid}"
        env.update(environ or {})
        seen: dict[str, object] = {}

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: object = None) -> Callable[[bytes], object]:
            seen["status"], seen["headers"] = status, headers
            return lambda _data: None

        chunks: Iterable[bytes] = self.app(env, start_response)  # type: ignore[arg-type]
        text = b"".join(chunks).decode("utf-8")
        status = str(seen["status"])
        headers = seen["headers"]
        assert isinstance(headers, list)
        return Result(int(status.split()[0]), headers, text)

    def get(self, sid: str | None = RW) -> Result:
        return self.request("GET", "/", sid=sid)

    def post_page(self, page: Result, action: str, changes: dict[str, str | None] | None = None,
                  *, sid: str | None = RW) -> Result:
        """Post the settings form of ``page`` as a browser would, with ``changes``
        (None removes a field, as unchecking a checkbox does)."""
        fields = browser_fields(page.body)
        for name, value in (changes or {}).items():
            fields = [(n, v) for n, v in fields if n != name]
            if value is not None:
                fields.append((name, value))
        fields.append(("action", action))
        return self.request("POST", "/", fields, sid=sid)

    def text(self) -> str:
        return self.uci.read_text()


def write_standin(path: Path, now: float) -> None:
    sessions = {
        RW: {"expires": now + 3600, "access": {"luci-app-fwknopd": ["read", "write"]}},
        RO: {"expires": now + 3600, "access": {"luci-app-fwknopd": ["read"]}},
        EXPIRED: {"expires": now - 1, "access": {"luci-app-fwknopd": ["read", "write"]}},
        OTHER_GROUP: {"expires": now + 3600, "access": {"luci-app-other": ["read", "write"]}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sessions": sessions}))


def make_router(tmp_path: Path, text: str | None = BASIC, *, status: DaemonStatus | None = None,
                networks: Networks | None = None, renderer: str = "qrencode") -> Router:
    root = tmp_path / "root"
    uci = root / "etc" / "config" / "fwknopd"
    uci.parent.mkdir(parents=True)
    if text is not None:
        uci.write_text(text)
    standin = root / "var" / "run" / "rpcd-standin.json"
    write_standin(standin, time.time())
    reload_log = tmp_path / "reload.log"
    recorder = tmp_path / "reload.py"
    recorder.write_text("import json, sys\n"
                        "with open(sys.argv[1], 'a') as f:\n"
                        "    f.write(json.dumps(sys.argv[2:]) + '\\n')\n")
    keys = iter([(NEW_KEY, NEW_HMAC)] * 100)
    config = WebConfig(
        uci_path=uci, secret_path=root / "etc" / "fwknopd-uci-web.secret",
        sessions=StandinSessions(standin),
        reload_command=(sys.executable, str(recorder), str(reload_log), "reload"),
        status=FakeStatus(status or DaemonStatus(False, None, "wan", "network 'wan'", ())),
        networks=lambda: networks, qr_renderer=renderer,  # type: ignore[arg-type]
        keygen=lambda: next(keys))
    return Router(root, SettingsApp(config), uci, reload_log)


@pytest.fixture
def router(tmp_path: Path) -> Router:
    return make_router(tmp_path)


class _FormReader(HTMLParser):
    """The successful controls of the #settings form, as a browser posts them
    (no buttons: the caller adds the one that was pressed)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self.inside = False
        self.select: str | None = None
        self.options: list[tuple[str, bool]] = []
        self.option_text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == "settings":
            self.inside = True
        if not self.inside or "disabled" in a:
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("text", "password", "hidden"):
                self.fields.append((a["name"], a.get("value", "")))
            elif kind == "checkbox" and "checked" in a:
                self.fields.append((a["name"], a.get("value", "on")))
        elif tag == "select":
            self.select, self.options = a["name"], []
        elif tag == "option" and self.select is not None:
            self.options.append((a.get("value", ""), "selected" in a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self.select is not None:
            chosen = [v for v, s in self.options if s] or [self.options[0][0]]
            self.fields.append((self.select, chosen[0]))
            self.select = None


def browser_fields(body: str) -> list[tuple[str, str]]:
    reader = _FormReader()
    reader.feed(body)
    return reader.fields


def field_values(body: str) -> dict[str, str]:
    return dict(browser_fields(body))


def notice(body: str) -> str:
    match = re.search(r'<p class="notice[^"]*" id="notice">(.*?)</p>', body, re.DOTALL)
    return unescape(match.group(1)) if match else ""


def field_error(body: str, fid: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{re.escape(fid)}-error">(.*?)</p>', body,
                      re.DOTALL)
    return unescape(match.group(1)) if match else None


def assert_headers(result: Result) -> None:
    for name, value in SECURITY_HEADERS:
        assert result.all_headers(name) == [value], name
    assert result.header("Content-Type") is not None


# --- sessions --------------------------------------------------------------------------------

ROUTES = [("GET", "/"), ("HEAD", "/"), ("POST", "/"), ("GET", "/static/style.css"),
          ("POST", "/logout"), ("GET", "/login"), ("GET", "/no-such-page"), ("PUT", "/")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("sid", [None, EXPIRED, OTHER_GROUP, "ab" * 16 + "0",
                                 "0123456789ABCDEF0123456789abcdeX", "not-a-session"])
def test_web_app_refuses_every_route_without_a_valid_session(
        router: Router, method: str, path: str, sid: str | None) -> None:
    before = router.uci.read_bytes()
    result = router.request(method, path, {"action": "save", "csrf_token": "x"}, sid=sid)
    assert result.status == 403
    assert_headers(result)
    if method != "HEAD":
        assert 'id="login-sessionid"' in result.body and 'name="sessionid"' in result.body
        assert "Open this page from LuCI (Services -&gt; Firewall Knock (SPA))" in result.body
    assert router.uci.read_bytes() == before
    assert result.header("Location") is None


def test_web_app_expired_session_is_refused_when_it_expires(tmp_path: Path) -> None:
    router = make_router(tmp_path)
    assert router.get().status == 200
    store = router.root / "var" / "run" / "rpcd-standin.json"
    data = json.loads(store.read_text())
    data["sessions"][RW]["expires"] = time.time() - 1
    store.write_text(json.dumps(data))
    result = router.get()
    assert result.status == 403
    assert "fwknopd_sid=;" in (result.header("Set-Cookie") or "")  # the stale cookie is dropped


def test_web_app_login_sets_the_cookie_and_redirects(router: Router) -> None:
    result = router.request("POST", "/login", {"sessionid": RW}, sid=None)
    assert result.status == 303
    assert result.header("Location") == "/"
    assert result.header("Set-Cookie") == (f"fwknopd_sid={RW}; HttpOnly; SameSite=Strict; "
                                           "Path=/")
    assert RW not in result.body
    assert_headers(result)


def test_web_app_login_under_a_script_name_and_https(router: Router) -> None:
    router.script_name = "/cgi-bin/fwknopd-settings"
    result = router.request("POST", "/login", {"sessionid": RO}, sid=None,
                            environ={"HTTPS": "on"})
    assert result.status == 303
    assert result.header("Location") == "/cgi-bin/fwknopd-settings/"
    assert result.header("Set-Cookie") == (f"fwknopd_sid={RO}; HttpOnly; SameSite=Strict; "
                                           "Path=/cgi-bin/fwknopd-settings; Secure")
    page = router.get(sid=RO)
    assert 'action="/cgi-bin/fwknopd-settings/"' in page.body
    assert 'href="/cgi-bin/fwknopd-settings/static/style.css"' in page.body


@pytest.mark.parametrize("sid", [EXPIRED, OTHER_GROUP, "x" * 32, "", "a" * 31, "a" * 33])
def test_web_app_login_refuses_bad_sessions(router: Router, sid: str) -> None:
    result = router.request("POST", "/login", {"sessionid": sid}, sid=None)
    assert result.status == 403
    assert result.header("Set-Cookie") is None
    assert "is not valid" in notice(result.body)
    assert_headers(result)


def test_web_app_login_refuses_a_cross_site_post(router: Router) -> None:
    result = router.request("POST", "/login", {"sessionid": RW}, sid=None,
                            environ={"HTTP_SEC_FETCH_SITE": "cross-site"})
    assert result.status == 403
    assert result.header("Set-Cookie") is None


def test_web_app_no_session_id_in_any_url_or_body(router: Router) -> None:
    """The sid reaches the app only by POST and the cookie: no page, link,
    form action or Location carries it (the CSRF token is an HMAC of it)."""
    results = [router.request("POST", "/login", {"sessionid": RW}, sid=None)]
    page = router.get()
    results.append(page)
    for action in ("genkeys-0", "add", "remove-0", "reveal", "save", "apply"):
        results.append(router.post_page(page, action))
    results.append(router.request("POST", "/logout", {"csrf_token": csrf(page)}))
    for result in results:
        assert RW not in result.body
        for name, value in result.headers:
            if name != "Set-Cookie":
                assert RW not in value
        location = result.header("Location")
        assert location in (None, "/")
    urls = re.findall(r'(?:href|action|src)="([^"]*)"', page.body)
    assert urls and all(u in ("/", "/static/style.css", "/logout", "data:,") for u in urls)


def test_web_app_logout_forgets_the_cookie(router: Router) -> None:
    page = router.get()
    result = router.request("POST", "/logout", {"csrf_token": csrf(page)})
    assert result.status == 303 and result.header("Location") == "/"
    assert result.header("Set-Cookie") == ("fwknopd_sid=; HttpOnly; SameSite=Strict; Path=/; "
                                           "Max-Age=0")
    refused = router.request("POST", "/logout", {"csrf_token": "wrong"})
    assert refused.status == 403


def test_web_app_read_only_session_sees_a_disabled_page(router: Router) -> None:
    result = router.get(sid=RO)
    assert result.status == 200
    assert 'id="readonly"' in result.body
    controls = re.findall(r"<(?:input|select|button)\b[^>]*>", result.body.split(
        'id="settings"')[1].split("</form>")[0])
    assert controls
    for control in controls:
        assert 'type="hidden"' in control or " disabled" in control, control
    assert 'id="access-0-qr"' in result.body  # the QR code is shown with read access


@pytest.mark.parametrize("action", ["save", "apply", "genkeys-0", "add", "remove-0", "reveal"])
def test_web_app_read_only_session_cannot_post(router: Router, action: str) -> None:
    page = router.get(sid=RO)
    fields = [("csrf_token", csrf(page)), ("access.0.SOURCE", "192.0.2.1"), ("action", action)]
    before = router.uci.read_bytes()
    result = router.request("POST", "/", fields, sid=RO)
    assert result.status == 403
    assert_headers(result)
    assert router.uci.read_bytes() == before
    assert not router.reload_log.exists()


# --- CSRF --------------------------------------------------------------------------------

def csrf(page: Result) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.body)
    assert match is not None
    return match.group(1)


@pytest.mark.parametrize("token", [None, "", "0" * 64, "not hex", "x" * 5000])
@pytest.mark.parametrize("action", ["save", "apply", "genkeys-0", "remove-0"])
def test_web_app_post_without_the_right_csrf_token_changes_nothing(
        router: Router, token: str | None, action: str) -> None:
    page = router.get()
    before = router.uci.read_bytes()
    changes: dict[str, str | None] = {"csrf_token": token, "access.0.SOURCE": "192.0.2.7"}
    result = router.post_page(page, action, changes)
    assert result.status == 403
    assert "security token" in notice(result.body)
    assert router.uci.read_bytes() == before
    assert not router.reload_log.exists()


def test_web_app_csrf_token_of_another_session_is_refused(tmp_path: Path) -> None:
    router = make_router(tmp_path)
    store = router.root / "var" / "run" / "rpcd-standin.json"
    data = json.loads(store.read_text())
    second = "abcdefabcdefabcdefabcdefabcdef12"
    data["sessions"][second] = data["sessions"][RW]
    store.write_text(json.dumps(data))
    theirs = csrf(router.get(sid=second))
    mine = router.get()
    assert csrf(mine) != theirs
    before = router.uci.read_bytes()
    result = router.post_page(mine, "save", {"csrf_token": theirs})
    assert result.status == 403 and router.uci.read_bytes() == before


def test_web_app_csrf_secret_file_is_private(router: Router) -> None:
    router.get()
    secret = router.root / "etc" / "fwknopd-uci-web.secret"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert len(secret.read_bytes()) == 32


# --- headers -----------------------------------------------------------------------------

def test_web_app_security_headers_on_every_response(router: Router) -> None:
    page = router.get()
    results = [
        page, router.request("GET", "/static/style.css"),
        router.request("GET", "/", sid=None), router.request("GET", "/nope"),
        router.request("DELETE", "/"), router.request("GET", "/logout"),
        router.post_page(page, "save", {"access.0.SOURCE": ""}),  # 400
        router.post_page(page, "save", {"csrf_token": "bad"}),  # 403
        router.post_page(page, "bogus-action"),  # 400
        router.request("POST", "/login", {"sessionid": RW}, sid=None),  # 303
        router.request("POST", "/", body=b"x" * (600 * 1024)),  # 413
        router.request("POST", "/", {"a": "b"}, environ={"CONTENT_TYPE": "multipart/form-data"}),
    ]
    router.uci.write_text(BASIC + "\n# changed elsewhere\n")
    results.append(router.post_page(page, "save"))  # 409
    router.uci.write_text("config 'broken\n")
    results.append(router.get())  # 500
    statuses = [r.status for r in results]
    assert statuses == [200, 200, 403, 404, 405, 405, 400, 403, 400, 303, 413, 415, 409, 500]
    for result in results:
        assert_headers(result)
    assert results[1].header("Content-Type") == "text/css; charset=utf-8"
    assert results[0].header("Content-Type") == "text/html; charset=utf-8"
    assert "<script" not in page.body and "style=" not in page.body


def test_web_app_head_has_no_body(router: Router) -> None:
    result = router.request("HEAD", "/")
    assert result.status == 200 and result.body == ""
    assert int(result.header("Content-Length") or 0) > 0


# --- the page ----------------------------------------------------------------------------

ROUND_TRIP = [
    ("basic", BASIC),
    *[(p.name, p.read_text()) for p in sorted((DATA / "openwrt").glob("*.uci"))],
    ("edit-before", (DATA / "uci" / "edit-before.uci").read_text()),
]
if SHARED_DEFAULT.is_file():
    ROUND_TRIP.append(("openwrt-default", SHARED_DEFAULT.read_text()))


@pytest.mark.parametrize(("name", "text"), ROUND_TRIP, ids=[n for n, _ in ROUND_TRIP])
def test_web_app_saving_an_unchanged_page_keeps_the_file_byte_for_byte(
        tmp_path: Path, name: str, text: str) -> None:
    router = make_router(tmp_path, text)
    before = router.uci.read_bytes()
    page = router.get()
    assert page.status == 200
    result = router.post_page(page, "save")
    if result.status == 200:
        assert notice(result.body) == "Saved."
    else:  # a file the generator refuses stays refused, and untouched
        assert result.status == 400
    assert router.uci.read_bytes() == before
    for action in ("genkeys-0", "add", "reveal"):
        router.post_page(page, action)
        assert router.uci.read_bytes() == before


def test_web_app_page_shows_every_field_with_label_and_help(router: Router) -> None:
    body = router.get().body
    ids = ["uci_enabled", "network", "access-0-SOURCE", "access-0-DESTINATION",
           "access-0-key", "access-0-key_type", "access-0-hmac_key", "access-0-hmac_key_type",
           "access-0-OPEN_PORTS", "access-0-RESTRICT_PORTS", "access-0-FW_ACCESS_TIMEOUT",
           "access-0-MAX_FW_TIMEOUT", "access-0-REQUIRE_SOURCE_ADDRESS",
           "access-0-REQUIRE_USERNAME", "access-0-HMAC_DIGEST_TYPE", "config-PCAP_INTF",
           "config-MAX_SPA_PACKET_AGE", "config-ENABLE_IPT_FORWARDING", "config-ENABLE_NAT_DNS",
           "config-ENABLE_UDP_SERVER"]
    for fid in ids:
        assert f'id="{fid}"' in body, fid
        assert f'<label class="cbi-value-title" for="{fid}">' in body, fid
        help_text = re.search(rf'id="{fid}-help">([^<]*)<', body)
        assert help_text is not None and "(" in help_text.group(1), fid
    assert 'name="access.0.SOURCE" value="ANY"' in body
    assert '<fieldset class="stanza cbi-section-node" id="access-0">' in body
    assert re.search(r'<input type="password"[^>]*id="access-0-key"', body)
    assert re.search(r'<input type="password"[^>]*id="access-0-hmac_key"', body)
    assert 'id="access-0-FW_ACCESS_TIMEOUT"' in body and "(default: 30)" in body
    assert "(default: 120)" in body and "(default: sha256)" in body


def test_web_app_refused_save_shows_every_error_at_its_field(router: Router) -> None:
    page = router.get()
    before = router.uci.read_bytes()
    result = router.post_page(page, "save", {
        "access.0.SOURCE": "", "access.0.OPEN_PORTS": "tcp/abc",
        "access.0.FW_ACCESS_TIMEOUT": "soon", "access.0.key": "not base64!",
        "config.MAX_SPA_PACKET_AGE": "0", "network": "w a n",
        "config.extra.0.name": "bad name", "config.extra.0.value": "1",
        "access.0.extra.0.name": "ENCRYPTION_MODE", "access.0.extra.0.value": "rot13"})
    assert result.status == 400
    assert router.uci.read_bytes() == before
    expected = {
        "access-0-SOURCE": "SOURCE is missing",
        "access-0-OPEN_PORTS": "OPEN_PORTS: 'tcp/abc' is not a port list",
        "access-0-FW_ACCESS_TIMEOUT": "is not a whole number",
        "access-0-key": "KEY_BASE64 is not base64",
        "config-MAX_SPA_PACKET_AGE": "is not a whole number in 1..100000",
        "network": "is not a logical network name",
        "config-extra-0-name": "is not an option name",
        "access-0-extra-0-value": "ENCRYPTION_MODE: 'rot13' is not one of",
    }
    for fid, text in expected.items():
        message = field_error(result.body, fid)
        assert message is not None and text in message, (fid, message)
        # Right after its field: the next tag after the field's own tag.
        after = result.body.split(f'id="{fid}"', 1)[1]
        assert re.match(r'[^<]*>\s*(?:<option[^>]*>[^<]*</option>\s*)*(?:</select>\s*)?'
                        rf'<p class="field-error" id="{fid}-error">', after), fid
    assert notice(result.body) == f"Not saved: {len(expected)} problems, shown below."
    # The posted values are shown again, not the saved ones.
    assert field_values(result.body)["access.0.OPEN_PORTS"] == "tcp/abc"


def test_web_app_script_is_escaped_and_refused_or_kept_as_text(router: Router) -> None:
    page = router.get()
    evil = "<script>alert(1)</script>"
    refused = router.post_page(page, "save", {"access.0.SOURCE": evil})
    assert refused.status == 400
    assert "<script" not in refused.body
    assert "&lt;script&gt;" in refused.body
    assert "is not an address list" in (field_error(refused.body, "access-0-SOURCE") or "")
    # A free-text value the generator accepts is saved, and shown escaped.
    saved = router.post_page(page, "save", {"access.0.REQUIRE_USERNAME": evil,
                                            "config.extra.0.name": "PCAP_FILTER",
                                            "config.extra.0.value": '"><img src=x>'})
    assert saved.status == 200
    assert "<script" not in saved.body and "<img" not in saved.body
    assert field_values(saved.body)["access.0.REQUIRE_USERNAME"] == evil
    assert "option REQUIRE_USERNAME '<script>alert(1)</script>'" in router.text()


def test_web_app_save_writes_exactly_the_expected_uci(router: Router) -> None:
    page = router.get()
    result = router.post_page(page, "save", {
        "access.0.SOURCE": "198.51.100.0/24", "access.0.OPEN_PORTS": "tcp/22, udp/1194",
        "access.0.REQUIRE_SOURCE_ADDRESS": "Y", "access.0.HMAC_DIGEST_TYPE": "sha512",
        "config.ENABLE_NAT_DNS": None, "config.MAX_SPA_PACKET_AGE": "60",
        "access.0.extra.0.name": "ENCRYPTION_MODE", "access.0.extra.0.value": "CBC"})
    assert result.status == 200, notice(result.body)
    assert notice(result.body) == "Saved."
    assert router.text() == f"""\
# A test configuration.

config global
\toption uci_enabled '1'

config network
\toption network 'wan'

config access
\toption SOURCE '198.51.100.0/24'
\toption KEY_BASE64 '{KEY}'
\toption HMAC_KEY_BASE64 '{HMAC}'
\toption OPEN_PORTS 'tcp/22, udp/1194'
\toption HMAC_DIGEST_TYPE 'sha512'
\toption REQUIRE_SOURCE_ADDRESS 'Y'
\toption ENCRYPTION_MODE 'CBC'

config config
\toption ENABLE_NAT_DNS 'N'
\toption MAX_SPA_PACKET_AGE '60'
"""
    assert not router.reload_log.exists()
    shown = field_values(result.body)
    assert shown["access.0.SOURCE"] == "198.51.100.0/24"
    assert shown["access.0.extra.0.name"] == "ENCRYPTION_MODE"


def test_web_app_save_of_new_file_and_disabling_uci(tmp_path: Path) -> None:
    router = make_router(tmp_path, None)
    page = router.get()
    assert page.status == 200 and "saving creates it" in notice(page.body)
    assert 'id="no-stanzas"' in page.body
    refused = router.post_page(page, "save")
    assert refused.status == 400 and not router.uci.exists()
    assert "there is no access section" in refused.body
    added = router.post_page(page, "add")
    keyed = router.post_page(added, "genkeys-0")
    saved = router.post_page(keyed, "save", {"access.0.SOURCE": "ANY", "uci_enabled": "1"})
    assert saved.status == 200, saved.body
    assert router.text() == f"""\
config global
\toption uci_enabled '1'

config access
\toption SOURCE 'ANY'
\toption KEY_BASE64 '{NEW_KEY}'
\toption HMAC_KEY_BASE64 '{NEW_HMAC}'
"""
    assert router.uci.stat().st_mode & 0o777 == 0o600  # it holds keys
    off = router.post_page(saved, "save", {"uci_enabled": None})
    assert off.status == 200
    assert "uci_enabled" not in router.text()


def test_web_app_apply_saves_then_runs_the_reload_command(router: Router) -> None:
    page = router.get()
    result = router.post_page(page, "apply", {"access.0.OPEN_PORTS": "tcp/2222"})
    assert result.status == 200
    assert notice(result.body) == "Saved and applied."
    assert "option OPEN_PORTS 'tcp/2222'" in router.text()
    assert router.reload_log.read_text().splitlines() == ['["reload"]']


def test_web_app_apply_of_a_refused_form_runs_nothing(router: Router) -> None:
    result = router.post_page(router.get(), "apply", {"access.0.SOURCE": ""})
    assert result.status == 400 and not router.reload_log.exists()


def test_web_app_apply_reports_a_failing_reload(tmp_path: Path) -> None:
    router = make_router(tmp_path)
    router.app.config.reload_command = (sys.executable, "-c",
                                        ("import sys; print('no fwknopd-uci', file=sys.stderr); "
                                        "sys.exit(3)"))
    result = router.post_page(router.get(), "apply", {"access.0.OPEN_PORTS": "tcp/2"})
    assert result.status == 500
    assert "Saved, but applying failed" in notice(result.body)
    assert "exited 3: no fwknopd-uci" in notice(result.body)
    assert "option OPEN_PORTS 'tcp/2'" in router.text()
    router.app.config.reload_command = (str(tmp_path / "missing-command"),)
    missing = router.post_page(router.get(), "apply")
    assert missing.status == 500 and "there is no" in notice(missing.body)


def test_web_app_genkeys_changes_nothing_until_saved(router: Router) -> None:
    page = router.get()
    before = router.uci.read_bytes()
    result = router.post_page(page, "genkeys-0", {"access.0.key_type": "plain"})
    assert result.status == 200
    assert notice(result.body) == "New keys generated - Save to keep them."
    assert router.uci.read_bytes() == before
    values = field_values(result.body)
    assert values["access.0.key"] == NEW_KEY and values["access.0.hmac_key"] == NEW_HMAC
    assert values["access.0.key_type"] == "base64" and values["access.0.hmac_key_type"] == "base64"
    assert re.search(r'<input type="password"[^>]*id="access-0-key"', result.body)
    # The QR code is the new keys' one.
    section = UciSection("access", None, {"KEY_BASE64": NEW_KEY, "HMAC_KEY_BASE64": NEW_HMAC})
    assert qr_svg(qr_text(section), "qrencode", label="QR code of the keys") in result.body
    saved = router.post_page(result, "save")
    assert saved.status == 200
    assert f"option KEY_BASE64 '{NEW_KEY}'" in router.text()
    assert f"option HMAC_KEY_BASE64 '{NEW_HMAC}'" in router.text()


def test_web_app_genkeys_of_a_missing_stanza_is_refused(router: Router) -> None:
    result = router.post_page(router.get(), "genkeys-5")
    assert result.status == 400


def test_web_app_add_and_remove_stanzas_are_saved_only_on_save(tmp_path: Path) -> None:
    router = make_router(tmp_path, (DATA / "openwrt" / "two-access.uci").read_text())
    before = router.uci.read_bytes()
    page = router.get()
    removed = router.post_page(page, "remove-0")
    assert removed.status == 200
    assert notice(removed.body) == "Stanza removed - Save to make it permanent."
    assert router.uci.read_bytes() == before
    assert field_values(removed.body)["access.0.SOURCE"] == "ANY"
    assert 'id="access-1"' not in removed.body
    added = router.post_page(removed, "add")
    assert notice(added.body) == "Stanza added - Save to keep it."
    assert 'id="access-1"' in added.body and router.uci.read_bytes() == before
    keyed = router.post_page(added, "genkeys-1", {"access.1.SOURCE": "192.0.2.0/24"})
    assert field_values(keyed.body)["access.1.SOURCE"] == "192.0.2.0/24"
    saved = router.post_page(keyed, "save")
    assert saved.status == 200, saved.body
    pkg = parse(router.text())
    sources = [s.get("SOURCE") for s in pkg.sections_of("access")]
    assert sources == ["ANY", "192.0.2.0/24"]
    assert pkg.sections_of("access")[0].get("OPEN_PORTS") == "udp/1194"
    assert pkg.sections_of("access")[1].get("KEY_BASE64") == NEW_KEY
    assert "198.51.100.0/24" not in router.text()


def test_web_app_save_refuses_a_page_of_a_changed_file(router: Router) -> None:
    page = router.get()
    changed = BASIC.replace("tcp/22", "tcp/23")
    router.uci.write_text(changed)
    result = router.post_page(page, "save", {"access.0.SOURCE": "192.0.2.1"})
    assert result.status == 409
    assert "changed elsewhere" in notice(result.body)
    assert router.text() == changed
    assert field_values(result.body)["access.0.OPEN_PORTS"] == "tcp/23"


def test_web_app_reveal_shows_keys_as_text_until_hidden(router: Router) -> None:
    page = router.get()
    shown = router.post_page(page, "reveal")
    assert re.search(r'<input type="text"[^>]*id="access-0-key"', shown.body)
    assert field_values(shown.body)["show_keys"] == "1"
    kept = router.post_page(shown, "add")
    assert re.search(r'<input type="text"[^>]*id="access-0-hmac_key"', kept.body)
    hidden = router.post_page(kept, "hide")
    assert re.search(r'<input type="password"[^>]*id="access-0-key"', hidden.body)


def test_web_app_qr_figure_per_stanza_with_keys(tmp_path: Path) -> None:
    text = BASIC + "\nconfig access\n\toption SOURCE '192.0.2.9'\n\toption KEY 'pass word'\n" \
        "\nconfig access\n\toption SOURCE '192.0.2.10'\n"
    router = make_router(tmp_path, text, renderer="qrcode")
    body = router.get().body
    first = re.search(r'<figure id="access-0-qr" class="qr">\s*(<svg.*?</svg>)\s*<figcaption>',
                      body, re.DOTALL)
    assert first is not None
    pkg = parse(text)
    assert first.group(1) == qr_svg(qr_text(pkg.sections_of("access")[0]), "qrcode",
                                    label="QR code of the keys")
    second = body.split('id="access-1-qr"')[1].split("</figure>")[0]
    assert "KEY contains a space or &#39;:&#39;" in second  # qr_warnings
    assert 'id="access-2-qr"' not in body  # no keys, no QR code


def test_web_app_qr_without_any_renderer_says_why(tmp_path: Path) -> None:
    router = make_router(tmp_path)
    router.app.config.qrencode = str(tmp_path / "no-qrencode")
    body = router.get().body
    figure = body.split('id="access-0-qr"')[1].split("</figure>")[0]
    assert "No QR code:" in figure and "<svg" not in figure


def test_web_app_status_panel(tmp_path: Path) -> None:
    grants = (ActiveGrant(IPv4Address("203.0.113.9"), "tcp", 22, 25),
              ActiveGrant(IPv4Address("198.51.100.4"), "udp", 1194, -1))
    router = make_router(tmp_path, status=DaemonStatus(True, 4242, "pppoe-wan",
                                                       "as the running fwknopd was started",
                                                       grants))
    body = router.get().body
    status = body.split('<section id="status"')[1].split("</section>")[0]
    assert "Running (pid 4242)" in status and "pppoe-wan" in status
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", status)
    assert rows == [("203.0.113.9", "tcp/22", "25"), ("198.51.100.4", "udp/1194", "no timeout")]
    fake = router.app.config.status
    assert isinstance(fake, FakeStatus) and fake.seen


def test_web_app_status_panel_without_grants(tmp_path: Path) -> None:
    router = make_router(tmp_path, status=DaemonStatus(False, None, None, "why", None,
                                                       "nftables table inet fw4 not found"))
    status = router.get().body.split('<section id="status"')[1].split("</section>")[0]
    assert "Not running" in status
    assert "Cannot read the grants: nftables table inet fw4 not found" in status
    assert 'id="status-grants"' in status


def test_web_app_network_select_preselects_the_detected_wan(tmp_path: Path) -> None:
    text = BASIC.replace("\toption network 'wan'\n", "")
    networks = Networks(("lan", "wan", "wan6", "wwan"), "wwan", frozenset({"lan", "wwan"}))
    router = make_router(tmp_path, text, networks=networks)
    page = router.get()
    assert '<select class="cbi-input-select" id="network" name="network"' in page.body
    assert field_values(page.body)["network"] == "wwan"
    saved = router.post_page(page, "save")
    assert saved.status == 200
    assert "option network 'wwan'" in router.text()


def test_web_app_network_select_keeps_an_unknown_network(tmp_path: Path) -> None:
    text = BASIC.replace("'wan'", "'vpn'")
    router = make_router(tmp_path, text, networks=Networks(("lan", "wan"), "wan"))
    page = router.get()
    assert field_values(page.body)["network"] == "vpn"
    assert "vpn (not configured)" in page.body


def test_web_app_no_wan_preselection_when_pcap_intf_is_set(tmp_path: Path) -> None:
    text = (DATA / "openwrt" / "pcap-intf.uci").read_text()
    router = make_router(tmp_path, text, networks=Networks(("lan", "wan"), "wan"))
    assert field_values(router.get().body)["network"] == ""


def test_web_app_bounds_the_request_body(router: Router) -> None:
    before = router.uci.read_bytes()
    assert router.request("POST", "/", body=b"a=b&" * 200_000).status == 413
    fields = "&".join(f"f{i}=1" for i in range(10_000)).encode()
    assert router.request("POST", "/", body=fields).status == 413
    assert router.uci.read_bytes() == before


def test_web_app_forged_form_structure_is_refused(router: Router) -> None:
    page = router.get()
    for changes in ({"access.0.key_type": "rot13"}, {"access.0.origin": "7"},
                    {"access_count": "999"}, {"access.0.extra.x.name": "A"}):
        before = router.uci.read_bytes()
        result = router.post_page(page, "save", changes)  # type: ignore[arg-type]
        assert result.status in (400, 409), changes
        assert router.uci.read_bytes() == before


def test_web_app_broken_uci_file_is_not_edited(router: Router) -> None:
    router.uci.write_text("config access\n\toption SOURCE 'ANY\n")
    page = router.get()
    assert page.status == 500 and "Cannot read the configuration" in page.body
    assert 'id="settings"' not in page.body


def test_web_app_static_css_needs_a_session(router: Router) -> None:
    assert router.request("GET", "/static/style.css", sid=None).status == 403
    css = router.request("GET", "/static/style.css")
    assert css.status == 200 and ".cbi-value" in css.body


def test_web_app_flag_that_is_no_boolean_is_shown_as_text_and_refused(tmp_path: Path) -> None:
    text = BASIC.replace("uci_enabled '1'", "uci_enabled 'sometimes'").replace(
        "ENABLE_NAT_DNS 'Y'", "ENABLE_NAT_DNS 'perhaps'")
    router = make_router(tmp_path, text)
    page = router.get()
    assert re.search(r'<input type="text"[^>]*id="uci_enabled" name="uci_enabled" '
                     r'value="sometimes"', page.body)
    assert field_values(page.body)["config.ENABLE_NAT_DNS"] == "perhaps"
    refused = router.post_page(page, "save")
    assert refused.status == 400 and router.text() == text
    assert "is not a UCI boolean" in (field_error(refused.body, "uci_enabled") or "")
    assert "is not a boolean" in (field_error(refused.body, "config-ENABLE_NAT_DNS") or "")
    fixed = router.post_page(page, "save", {"uci_enabled": "1", "config.ENABLE_NAT_DNS": "N"})
    assert fixed.status == 200
    assert "uci_enabled '1'" in router.text() and "ENABLE_NAT_DNS 'N'" in router.text()
    assert re.search(r'<input type="checkbox"[^>]*id="uci_enabled"', fixed.body)


def test_web_app_concurrent_saves_from_one_page_load_let_exactly_one_win(
        router: Router) -> None:
    """Saves made from the same page load: one is saved, every other one gets 409."""
    import threading

    page = router.get()
    results: list[int] = []
    barrier = threading.Barrier(4)

    def save(name: str) -> None:
        barrier.wait()
        results.append(router.post_page(page, "save",
                                        {"access.0.REQUIRE_USERNAME": name}).status)

    threads = [threading.Thread(target=save, args=(f"user{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [200, 409, 409, 409]
    assert router.text().count("REQUIRE_USERNAME") == 1
