# The settings page (fwknopd_uci.web) in a real browser: Debian's headless
# Chromium driven by Selenium, against the standalone server in a scratch
# root, with the rpcd stand-in's session file and a recording reload command.
#
# Each test starts its own server and browser, so no state leaks between
# them. What is checked is what a user sees and what lands on disk: the UCI
# file's bytes, the reload command's record, and the QR code as pixels,
# decoded by zbarimg. A full-page screenshot is kept in
# test-artifacts/settings-page.png.
#
# The last tests put the page where it lives on a router: the real LuCI view
# (luci/.../view/fwknopd-uci.js) in a LuCI stand-in page, the app mounted as
# the CGI /cgi-bin/fwknopd-settings on the same origin (webdriver.py
# LuciFrameServer), and check that the session id goes by POST only.

from __future__ import annotations

import base64
import http.client
import json
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import DATA, SHARED
from webdriver import (
    ARTIFACTS,
    CGI_PREFIX,
    LUCI_PAGE,
    VIEW_JS,
    WINDOW,
    LuciFrameServer,
    PageServer,
    browser,
    open_page,
    require_browser,
    zbar_decode,
)

from fwknopd_uci.openwrt.qr import qr_text
from fwknopd_uci.openwrt.uci import load

if TYPE_CHECKING:
    from selenium.webdriver import Chrome as WebDriver
    from selenium.webdriver.remote.webelement import WebElement

SID_RW = "0123456789abcdef0123456789abcdef"
SID_RO = "fedcba9876543210fedcba9876543210"
SID_UNKNOWN = "00112233445566778899aabbccddeeff"
TWO_ACCESS = DATA / "openwrt" / "two-access.uci"
# The fwknopd file openwrt/packages ships (placeholder keys): another
# project's data, never copied into this repository (the test writes its
# bytes into the scratch root only).
SHIPPED = SHARED / "vectors" / "uci-configs" / "net_fwknop_files_fwknopd"
WAIT = 15  # seconds for a navigation or an element
WINDOW_HEIGHT = WINDOW[1]


# --- fixtures and small helpers -------------------------------------------

@pytest.fixture
def server(tmp_path: Path) -> Iterator[PageServer]:
    require_browser()
    with PageServer(tmp_path / "root", TWO_ACCESS.read_bytes(),
                    {SID_RW: ["read", "write"], SID_RO: ["read"]}) as srv:
        srv.start()
        yield srv


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    with browser() as drv:
        yield drv


def by_id(driver: WebDriver, element_id: str) -> WebElement:
    from selenium.webdriver.common.by import By
    return driver.find_element(By.ID, element_id)


def field(driver: WebDriver, name: str) -> WebElement:
    """The input of a form field, found by the contract's id rule."""
    return by_id(driver, name.replace(".", "-"))


def all_css(driver: WebDriver, selector: str) -> list[WebElement]:
    from selenium.webdriver.common.by import By
    return driver.find_elements(By.CSS_SELECTOR, selector)


def navigate(driver: WebDriver, act: Any) -> None:
    """Run act() (a click or a submit) and wait for the next page to load.

    While Chromium swaps documents, DevTools may answer a query about the old
    one with "node does not belong to the document" or an inspector error;
    those mean "not loaded yet", so the wait ignores them and asks again.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html").id
    act()

    def loaded(d: WebDriver) -> bool:
        new = d.find_element(By.TAG_NAME, "html").id
        return bool(new != old and d.execute_script("return document.readyState") == "complete")

    WebDriverWait(driver, WAIT, ignored_exceptions=(WebDriverException,)).until(loaded)


def wait_for(driver: WebDriver, condition: Any) -> Any:
    """WebDriverWait(...).until(condition), asking again on transient driver errors."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.wait import WebDriverWait

    return WebDriverWait(driver, WAIT, ignored_exceptions=(WebDriverException,)).until(
        condition)


def press(driver: WebDriver, action: str) -> None:
    """Click the submit button `action`=<action> and wait for the answer."""
    buttons = all_css(driver, f'button[name="action"][value="{action}"], '
                              f'input[type="submit"][name="action"][value="{action}"]')
    # The form starts with a visually hidden Save (the Enter key's default),
    # marked aria-hidden; a user clicks the visible one.
    shown = [b for b in buttons if b.is_displayed() and b.get_attribute("aria-hidden") != "true"]
    assert shown, f"no visible button with action={action!r} on the page"
    navigate(driver, shown[0].click)


def type_into(element: WebElement, value: str) -> None:
    element.clear()
    element.send_keys(value)


def login(driver: WebDriver, srv: PageServer, sid: str = SID_RW) -> None:
    """Log in the way a user without LuCI would: the page's own login form."""
    open_page(driver, srv.url)
    box = by_id(driver, "login-sessionid")
    type_into(box, sid)
    navigate(driver, box.submit)


def saved_access(srv: PageServer) -> list[dict[str, str | list[str]]]:
    return [dict(s.options) for s in load(srv.uci_path).sections_of("access")]


def expected_qr(srv: PageServer, index: int) -> bytes:
    """The QR text the saved UCI calls for, built by the project's own rule."""
    return qr_text(load(srv.uci_path).sections_of("access")[index]).encode()


def decoded_qr(driver: WebDriver, index: int) -> list[bytes]:
    """What zbarimg reads from a screenshot of stanza <index>'s QR figure."""
    figure = by_id(driver, f"access-{index}-qr")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", figure)
    png: bytes = figure.screenshot_as_png
    return zbar_decode(png)


def cookie_header(driver: WebDriver) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())


def http_request(srv: PageServer, method: str, path: str, *, body: dict[str, str] | None = None,
                 cookie: str = "") -> tuple[int, dict[str, str], bytes]:
    """One request straight to the server (no browser): status, headers, body."""
    parts = urllib.parse.urlsplit(srv.url)
    assert parts.hostname == "127.0.0.1" and parts.port is not None
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=WAIT)
    headers = {"Cookie": cookie} if cookie else {}
    data = None
    if body is not None:
        data = urllib.parse.urlencode(body).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def form_fields(driver: WebDriver) -> dict[str, str]:
    """The name/value pairs the main form would post (inputs and selects)."""
    pairs: dict[str, str] = driver.execute_script("""
        const out = {};
        const form = document.querySelector('form:has(fieldset.stanza)')
            || document.querySelector('form');
        for (const el of form.elements) {
            if (!el.name || el.type === 'submit' || el.tagName === 'BUTTON') continue;
            if ((el.type === 'checkbox' || el.type === 'radio') && !el.checked) continue;
            out[el.name] = el.value;
        }
        return out;
    """)
    return pairs


def choose(driver: WebDriver, name: str, value: str) -> None:
    """Pick `value` for a choice field, a <select> or a group of radios."""
    from selenium.webdriver.support.select import Select

    boxes = all_css(driver, f'select[name="{name}"]')
    if boxes:
        Select(boxes[0]).select_by_value(value)
        return
    radios = all_css(driver, f'input[type="radio"][name="{name}"][value="{value}"]')
    assert radios, f"no select or radio for {name}={value}"
    radios[0].click()


def no_alert(driver: WebDriver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException
    try:
        driver.switch_to.alert  # noqa: B018 - raises when there is none
    except NoAlertPresentException:
        return True
    return False


def decoded_b64(value: str | list[str] | None) -> bytes:
    assert isinstance(value, str)
    return base64.b64decode(value, validate=True)


# --- sessions and headers -------------------------------------------------

def test_page_without_session_shows_login_only(server: PageServer, driver: WebDriver) -> None:
    """No cookie: the login form, no stanza; a sid in a URL is not a login."""
    open_page(driver, server.url)
    assert by_id(driver, "login-sessionid").get_attribute("name") == "sessionid"
    assert all_css(driver, "fieldset.stanza") == []
    assert "OjuLt2Ly33uvN7cBmIwoZDkEbdouZcfIsWikTvPPEOc" not in driver.page_source

    # The id reaches the app only by POST.
    open_page(driver, f"{server.url}login?sessionid={SID_RW}")
    open_page(driver, f"{server.url}?sessionid={SID_RW}")
    assert all_css(driver, "fieldset.stanza") == []
    assert all(c["name"] != "fwknopd_sid" for c in driver.get_cookies())
    status, _, _ = http_request(server, "GET", f"/?sessionid={SID_RW}")
    assert status == 403


def test_login_unknown_session_is_refused(server: PageServer, driver: WebDriver) -> None:
    login(driver, server, SID_UNKNOWN)
    assert by_id(driver, "login-sessionid")
    assert all_css(driver, "fieldset.stanza") == []
    assert all(c["name"] != "fwknopd_sid" for c in driver.get_cookies())


def test_login_form_sets_strict_httponly_cookie(server: PageServer, driver: WebDriver) -> None:
    login(driver, server)
    assert urllib.parse.urlsplit(driver.current_url).path == "/"
    assert SID_RW not in driver.current_url
    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert "fwknopd_sid" in cookies, cookies
    assert cookies["fwknopd_sid"]["httpOnly"] is True
    assert cookies["fwknopd_sid"]["sameSite"] == "Strict"
    assert "fwknopd_sid" not in driver.execute_script("return document.cookie")
    assert [e.get_attribute("id") for e in all_css(driver, "fieldset.stanza")] == [
        "access-0", "access-1"]
    assert field(driver, "access.0.SOURCE").get_attribute("value") == "198.51.100.0/24"
    assert field(driver, "access.1.OPEN_PORTS").get_attribute("value") == "udp/1194"
    assert by_id(driver, "status")


def test_login_post_answers_303_to_root(server: PageServer) -> None:
    status, headers, _ = http_request(server, "POST", "/login", body={"sessionid": SID_RW})
    assert status == 303
    assert urllib.parse.urlsplit(headers["location"]).path == "/"
    cookie = headers["set-cookie"]
    assert cookie.startswith("fwknopd_sid=")
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert "httponly" in attributes and "samesite=strict" in attributes


def test_security_headers_on_every_response(server: PageServer, driver: WebDriver) -> None:
    login(driver, server)
    for cookie in ("", cookie_header(driver)):
        status, headers, body = http_request(server, "GET", "/", cookie=cookie)
        assert status == (200 if cookie else 403)
        csp = headers.get("content-security-policy", "")
        assert csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
        assert "default-src" in csp or "script-src" in csp, csp
        assert headers.get("x-frame-options", "").upper() == "SAMEORIGIN"
        assert "no-store" in headers.get("cache-control", "")
        assert b"<script>" not in body.lower().replace(b" ", b"")


def test_page_has_no_console_errors(server: PageServer, driver: WebDriver) -> None:
    """No CSP violation or script error: the page works under its own CSP."""
    login(driver, server)
    open_page(driver, server.url)
    press(driver, "genkeys-0")
    type_into(field(driver, "access.0.OPEN_PORTS"), "tcp/99999")
    press(driver, "save")
    # Network entries are HTTP statuses (the 400 of a refused save is by
    # design, a favicon 404 is noise); CSP violations and script errors
    # come from the other sources.
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
              and e.get("source") != "network"]
    assert errors == []


def test_expired_session_gets_403_login(server: PageServer, driver: WebDriver) -> None:
    login(driver, server)
    assert all_css(driver, "fieldset.stanza")
    server.write_sessions({SID_RW: ["read", "write"]}, expires=1)
    open_page(driver, server.url)
    assert all_css(driver, "fieldset.stanza") == []
    assert by_id(driver, "login-sessionid")
    status, _, _ = http_request(server, "GET", "/", cookie=cookie_header(driver))
    assert status == 403


def test_read_only_session_disables_inputs_and_refuses_posts(
        server: PageServer, driver: WebDriver) -> None:
    before = server.uci_path.read_bytes()
    login(driver, server, SID_RO)
    assert all_css(driver, "fieldset.stanza")
    source = field(driver, "access.0.SOURCE")
    assert not source.is_enabled()
    enabled = [e.get_attribute("name") for e in all_css(driver, "input, select, textarea")
               if e.is_enabled() and e.get_attribute("type") not in ("hidden", "submit")]
    assert enabled == []

    # Forge what an enabled form would post, with the page's own CSRF token.
    fields = form_fields(driver) | {"access.0.OPEN_PORTS": "tcp/2222"}
    for action in ("save", "apply", "genkeys-0", "add", "remove-1"):
        status, _, _ = http_request(server, "POST", "/", body=fields | {"action": action},
                                    cookie=cookie_header(driver))
        assert status == 403, action
    assert server.uci_path.read_bytes() == before
    assert server.reloads() == []


def test_post_without_valid_csrf_token_is_refused(server: PageServer, driver: WebDriver) -> None:
    before = server.uci_path.read_bytes()
    login(driver, server)
    fields = form_fields(driver)
    assert fields.get("csrf_token"), "the form has no csrf_token"
    changed = fields | {"access.0.OPEN_PORTS": "tcp/2222", "action": "save"}
    for token in ("", "0" * len(fields["csrf_token"]), None):
        body = dict(changed)
        if token is None:
            del body["csrf_token"]
        else:
            body["csrf_token"] = token
        status, _, _ = http_request(server, "POST", "/", body=body, cookie=cookie_header(driver))
        assert status in (400, 403), (token, status)
    assert server.uci_path.read_bytes() == before
    # The same post with the real token works, so the refusals were the token.
    status, _, _ = http_request(server, "POST", "/", body=changed, cookie=cookie_header(driver))
    assert status in (200, 303)
    assert saved_access(server)[0]["OPEN_PORTS"] == "tcp/2222"


# --- editing --------------------------------------------------------------

def test_edit_generate_keys_and_save(server: PageServer, driver: WebDriver) -> None:
    old = saved_access(server)
    login(driver, server)
    type_into(field(driver, "access.0.OPEN_PORTS"), "tcp/2222")
    press(driver, "genkeys-0")
    assert field(driver, "access.0.OPEN_PORTS").get_attribute("value") == "tcp/2222"
    new_key = field(driver, "access.0.key").get_attribute("value")
    assert new_key and new_key != old[0]["KEY_BASE64"]
    press(driver, "save")

    saved = saved_access(server)
    assert saved[0]["OPEN_PORTS"] == "tcp/2222"
    assert saved[0]["SOURCE"] == "198.51.100.0/24"
    assert saved[0]["KEY_BASE64"] == new_key
    assert len(decoded_b64(saved[0]["KEY_BASE64"])) == 32
    assert len(decoded_b64(saved[0]["HMAC_KEY_BASE64"])) == 64
    assert saved[0]["HMAC_KEY_BASE64"] != old[0]["HMAC_KEY_BASE64"]
    assert saved[1] == old[1]  # the other stanza is untouched
    assert server.reloads() == []  # Save does not reload
    assert by_id(driver, "notice").text


def test_refused_value_shows_error_at_field_and_keeps_uci(
        server: PageServer, driver: WebDriver) -> None:
    before = server.uci_path.read_bytes()
    login(driver, server)
    type_into(field(driver, "access.0.OPEN_PORTS"), "tcp/99999")
    press(driver, "save")
    error = by_id(driver, "access-0-OPEN_PORTS-error")
    assert "field-error" in (error.get_attribute("class") or "").split()
    assert error.is_displayed() and error.text
    # The typed value stays in the field for the user to fix.
    assert field(driver, "access.0.OPEN_PORTS").get_attribute("value") == "tcp/99999"
    # No other field is blamed.
    assert [e.get_attribute("id") for e in all_css(driver, "p.field-error")] == [
        "access-0-OPEN_PORTS-error"]
    assert server.uci_path.read_bytes() == before

    press(driver, "apply")
    assert server.uci_path.read_bytes() == before
    assert server.reloads() == []


def test_save_and_apply_runs_the_reload_command(server: PageServer, driver: WebDriver) -> None:
    login(driver, server)
    type_into(field(driver, "access.1.FW_ACCESS_TIMEOUT"), "45")
    press(driver, "apply")
    assert saved_access(server)[1]["FW_ACCESS_TIMEOUT"] == "45"
    assert len(server.reloads()) == 1
    assert by_id(driver, "notice").text


def test_add_and_remove_stanza(server: PageServer, driver: WebDriver) -> None:
    login(driver, server)
    press(driver, "add")
    assert len(all_css(driver, "fieldset.stanza")) == 3
    type_into(field(driver, "access.2.SOURCE"), "203.0.113.7")
    press(driver, "genkeys-2")
    press(driver, "save")
    saved = saved_access(server)
    assert [s["SOURCE"] for s in saved] == ["198.51.100.0/24", "ANY", "203.0.113.7"]
    assert len(decoded_b64(saved[2]["KEY_BASE64"])) == 32

    press(driver, "remove-0")
    press(driver, "save")
    assert [s["SOURCE"] for s in saved_access(server)] == ["ANY", "203.0.113.7"]


def test_extra_option_pairs_are_saved(server: PageServer, driver: WebDriver) -> None:
    """The empty last row of "Other options" adds a pass-through option."""
    login(driver, server)
    type_into(field(driver, "access.0.extra.0.name"), "ENCRYPTION_MODE")
    type_into(field(driver, "access.0.extra.0.value"), "CBC")
    press(driver, "save")
    assert saved_access(server)[0]["ENCRYPTION_MODE"] == "CBC"
    assert field(driver, "access.0.extra.0.name").get_attribute("value") == "ENCRYPTION_MODE"
    # Clearing the row's name and value deletes the option again.
    type_into(field(driver, "access.0.extra.0.name"), "")
    type_into(field(driver, "access.0.extra.0.value"), "")
    press(driver, "save")
    assert "ENCRYPTION_MODE" not in saved_access(server)[0]


def test_shipped_default_config_gets_keys(tmp_path: Path, driver: WebDriver) -> None:
    """The file openwrt/packages ships: placeholders out, real keys in."""
    if not SHIPPED.is_file():
        pytest.skip(f"shipped fwknopd UCI file not found at {SHIPPED}")
    with PageServer(tmp_path / "root", SHIPPED.read_bytes(), {SID_RW: ["read", "write"]}) as srv:
        srv.start()
        login(driver, srv)
        press(driver, "genkeys-0")
        press(driver, "save")
        (access,) = saved_access(srv)
        assert "__CHANGEME__" not in access.values()
        assert "KEY" not in access and "HMAC_KEY" not in access
        assert len(decoded_b64(access["KEY_BASE64"])) == 32
        assert len(decoded_b64(access["HMAC_KEY_BASE64"])) == 64
        assert decoded_qr(driver, 0) == [expected_qr(srv, 0)]


# --- the QR code ----------------------------------------------------------

def test_qr_shown_matches_saved_keys(server: PageServer, driver: WebDriver) -> None:
    login(driver, server)
    for index in (0, 1):
        assert decoded_qr(driver, index) == [expected_qr(server, index)]
    press(driver, "genkeys-1")
    press(driver, "save")
    assert decoded_qr(driver, 1) == [expected_qr(server, 1)]
    text = expected_qr(server, 1).decode()
    assert text == (f"KEY_BASE64:{saved_access(server)[1]['KEY_BASE64']} "
                    f"HMAC_KEY_BASE64:{saved_access(server)[1]['HMAC_KEY_BASE64']}")
    assert decoded_qr(driver, 0) == [expected_qr(server, 0)]
    svg = all_css(driver, "#access-0-qr svg")
    assert len(svg) == 1


def test_qr_of_plain_keys(server: PageServer, driver: WebDriver) -> None:
    login(driver, server)
    type_into(field(driver, "access.1.key"), "correct-horse")
    choose(driver, "access.1.key_type", "plain")
    type_into(field(driver, "access.1.hmac_key"), "battery-staple-hmac")
    choose(driver, "access.1.hmac_key_type", "plain")
    press(driver, "save")
    saved = saved_access(server)[1]
    assert saved.get("KEY") == "correct-horse" and "KEY_BASE64" not in saved
    assert saved.get("HMAC_KEY") == "battery-staple-hmac" and "HMAC_KEY_BASE64" not in saved
    assert decoded_qr(driver, 1) == [b"KEY:correct-horse HMAC_KEY:battery-staple-hmac"]


# --- escaping -------------------------------------------------------------

@pytest.mark.parametrize("name", ["access.0.SOURCE", "access.0.OPEN_PORTS"])
def test_script_value_is_escaped_and_refused(name: str, server: PageServer,
                                             driver: WebDriver) -> None:
    before = server.uci_path.read_bytes()
    login(driver, server)
    hostile = '"><script>alert(1)</script><img src=x id=injected onerror=alert(2)>'
    type_into(field(driver, name), hostile)
    press(driver, "save")
    assert no_alert(driver)
    assert all_css(driver, "#injected") == []
    assert all(s.get_attribute("src") for s in all_css(driver, "script")), \
        "an inline <script> element is on the page"
    assert field(driver, name).get_attribute("value") == hostile
    assert by_id(driver, name.replace(".", "-") + "-error").text
    assert server.uci_path.read_bytes() == before


def test_hostile_value_already_in_uci_is_shown_escaped(tmp_path: Path, driver: WebDriver) -> None:
    """A value written by hand (or by another tool) is data, never markup."""
    hostile = "</textarea></script><img src=x id=injected onerror=alert(3)>"
    text = TWO_ACCESS.read_text(encoding="utf-8").replace(
        "option OPEN_PORTS 'udp/1194'", f"option OPEN_PORTS '{hostile}'")
    with PageServer(tmp_path / "root", text.encode(), {SID_RW: ["read", "write"]}) as srv:
        srv.start()
        login(driver, srv)
        assert no_alert(driver)
        assert all_css(driver, "#injected") == []
        assert field(driver, "access.1.OPEN_PORTS").get_attribute("value") == hostile


# --- the look -------------------------------------------------------------

def test_full_page_screenshot_artifact(server: PageServer, driver: WebDriver) -> None:
    """Keep test-artifacts/settings-page.png for a human to look at."""
    login(driver, server)
    press(driver, "genkeys-0")  # a page with a notice, as after a click
    ARTIFACTS.mkdir(exist_ok=True)
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot: dict[str, str] = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                     "scale": 1}})
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    (ARTIFACTS / "settings-page.png").write_bytes(png)


# --- inside LuCI ----------------------------------------------------------

def open_luci_view(driver: WebDriver, luci: LuciFrameServer) -> None:
    """Open the LuCI stand-in page and wait until the view has rendered."""

    open_page(driver, luci.url + LUCI_PAGE)
    wait_for(driver, 
        lambda d: d.execute_script("return window.viewReady || window.viewError || false"))
    assert driver.execute_script("return window.viewError || null") is None


def test_luci_view_posts_session_into_frame(tmp_path: Path, driver: WebDriver) -> None:
    """The view frames the CGI and logs it in by POST: the sid never shows
    up in a URL, the page lands under the CGI prefix and works there."""

    with LuciFrameServer(tmp_path / "root", TWO_ACCESS.read_bytes(),
                         {SID_RW: ["read", "write"]}, SID_RW) as luci:
        open_luci_view(driver, luci)
        view = driver.execute_script("""
            const v = window.fwknopdView;
            return {save: v.handleSave, apply: v.handleSaveApply, reset: v.handleReset};""")
        assert view == {"save": None, "apply": None, "reset": None}
        frame = by_id(driver, "fwknopd-settings")
        assert frame.tag_name == "iframe" and frame.get_attribute("name") == "fwknopd-settings"
        driver.switch_to.frame(frame)
        wait_for(driver, lambda d: all_css(d, "fieldset.stanza"))
        location = driver.execute_script("return location.href")
        assert location == f"{luci.url}{CGI_PREFIX}/"
        cookies = {c["name"]: c for c in driver.get_cookies()}
        assert cookies["fwknopd_sid"]["path"] == CGI_PREFIX
        assert cookies["fwknopd_sid"]["httpOnly"] is True

        logins = [r for r in luci.requests if r.path == f"{CGI_PREFIX}/login"]
        assert [(r.method, r.status[:3]) for r in logins] == [("POST", "303")]
        assert all(SID_RW not in r.path + r.query for r in luci.requests)
        css = [r for r in luci.requests if r.path == f"{CGI_PREFIX}/static/style.css"]
        assert css and all(r.status.startswith("200") for r in css)

        # The form posts back under the prefix, and saving works in the frame.
        type_into(field(driver, "access.0.OPEN_PORTS"), "tcp/2022")
        press(driver, "save")
        assert saved_access(luci.pages)[0]["OPEN_PORTS"] == "tcp/2022"
        assert driver.execute_script("return location.pathname") == f"{CGI_PREFIX}/"
        assert decoded_qr(driver, 0) == [expected_qr(luci.pages, 0)]

        driver.switch_to.default_content()
        assert SID_RW not in driver.current_url
        height = driver.execute_script(
            "return document.getElementById('fwknopd-settings').getBoundingClientRect().height")
        assert height > WINDOW_HEIGHT, "the frame was not grown to its content"


def test_luci_view_without_session_posts_nothing(tmp_path: Path, driver: WebDriver) -> None:
    with LuciFrameServer(tmp_path / "root", TWO_ACCESS.read_bytes(),
                         {SID_RW: ["read", "write"]}, "") as luci:
        open_luci_view(driver, luci)
        assert all_css(driver, "iframe") == []
        assert "log in again" in by_id(driver, "view").text
        assert all(not r.path.startswith(CGI_PREFIX) for r in luci.requests)


def test_luci_view_with_read_only_session(tmp_path: Path, driver: WebDriver) -> None:

    with LuciFrameServer(tmp_path / "root", TWO_ACCESS.read_bytes(),
                         {SID_RO: ["read"]}, SID_RO) as luci:
        open_luci_view(driver, luci)
        driver.switch_to.frame("fwknopd-settings")
        wait_for(driver, lambda d: all_css(d, "fieldset.stanza"))
        assert not field(driver, "access.0.SOURCE").is_enabled()


def test_luci_menu_acl_and_view_files() -> None:
    """The menu entry, the ACL (uci fwknopd read/write, nothing more) and a
    view that parses (node --check where node is installed)."""
    luci_dir = VIEW_JS.parents[4]
    menu = json.loads((luci_dir / "root/usr/share/luci/menu.d/luci-app-fwknopd-uci.json")
                      .read_text(encoding="utf-8"))
    assert menu == {"admin/services/fwknopd": {
        "title": "Firewall Knock (SPA)",
        "action": {"type": "view", "path": "fwknopd-uci"},
        "depends": {"acl": ["luci-app-fwknopd"], "uci": {"fwknopd": True}}}}
    assert (luci_dir / "htdocs/luci-static/resources/view/fwknopd-uci.js") == VIEW_JS
    acl = json.loads((luci_dir / "root/usr/share/rpcd/acl.d/luci-app-fwknopd.json")
                     .read_text(encoding="utf-8"))
    assert set(acl) == {"luci-app-fwknopd"}
    group = acl["luci-app-fwknopd"]
    assert set(group) == {"description", "read", "write"}
    assert group["read"] == {"uci": ["fwknopd"]} and group["write"] == {"uci": ["fwknopd"]}
    source = VIEW_JS.read_text(encoding="utf-8")
    assert source.startswith("'use strict';\n'require view';\n")
    node = shutil.which("node")
    if node is not None:
        subprocess.run([node, "--check", str(VIEW_JS)], check=True, timeout=30,
                       capture_output=True)
