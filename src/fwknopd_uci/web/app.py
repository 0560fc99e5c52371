# The settings page as a WSGI application: routes, sessions, CSRF, headers.
#
# Routes (relative to SCRIPT_NAME, the app root):
#   POST /login   sessionid=<rpcd sid> -> cookie fwknopd_sid, 303 to /
#   GET  /        the page (read access; inputs disabled without write)
#   POST /        action=save|apply|genkeys-<n>|add|remove-<n>|reveal|hide
#   GET  /static/style.css
#   POST /logout  forget the cookie (the LuCI session itself stays)
# Without a valid session every route but POST /login answers 403 with the
# login page. Every POST that changes anything needs write access and the
# form's csrf_token; a refused POST changes nothing.
#
# Security decisions:
# - The session id arrives only in a POST body (LuCI's view posts
#   L.env.sessionid into the iframe) and then lives in an HttpOnly,
#   SameSite=Strict cookie limited to the app's path. No URL this app makes
#   carries it or any key; Location headers are fixed paths.
# - Each request is checked with rpcd (session.py), so LuCI's logout and
#   session expiry apply at once.
# - CSRF: an HMAC of the session id (csrf.py) in every form; POSTs the
#   browser marks Sec-Fetch-Site: cross-site are refused outright.
# - Every response, errors included, carries the same headers: a CSP without
#   scripts or inline styles (the page needs no JavaScript), framing by the
#   same origin only (LuCI embeds it), no-store, nosniff, no referrer.
# - jinja2 autoescapes everything; the only markup inserted as is, the QR
#   SVG, is written by qrsvg.py from a module grid.
# - The request body is bounded (MAX_BODY, MAX_FIELDS).
#
# Save: the file is read once per request (bytes -> SHA-256 digest ->
# uci.parse); the form is written onto it (forms.apply); validate.py's
# validate_package, the generator's own rules, decides; uci.save writes
# atomically. The page posts the digest it was made from: when the file
# changed in between, nothing is saved (409) and the current settings are
# shown. Apply runs the reload command as an argv list, never a shell.

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

import jinja2

from ..config.errors import shown
from ..openwrt.qr import qr_text, qr_warnings
from ..openwrt.uci import MAX_FILE_BYTES, UciError, UciPackage, UciSection, parse, save
from ..openwrt.validate import option_datatype, validate_package
from ..server.keygen import generate_keys
from . import fields
from .csrf import CsrfError, CsrfTokens
from .forms import (
    MAX_STANZAS,
    Applied,
    Form,
    FormConflict,
    FormError,
    PostData,
    apply,
    form_from_package,
    form_from_post,
    new_stanza,
    place_errors,
)
from .i18n import _, ngettext
from .netifd import Networks
from .qrsvg import QrError, Renderer, qr_svg
from .session import ACL_GROUP, SessionChecker, valid_sid
from .status import DaemonStatus, StatusSource

__all__ = [
    "COOKIE",
    "DEFAULT_RELOAD",
    "MAX_BODY",
    "SECURITY_HEADERS",
    "SettingsApp",
    "WebConfig",
]

log = logging.getLogger(__name__)

COOKIE: Final = "fwknopd_sid"
DEFAULT_RELOAD: Final = ("/etc/init.d/fwknopd", "reload")
RELOAD_TIMEOUT: Final = 60.0  # seconds; the init script's plan takes about one
#: Bounds on a request body: the form of a few dozen stanzas is a few KiB.
MAX_BODY: Final = 512 * 1024
MAX_FIELDS: Final = 8192
_LOGIN_BODY: Final = 4096
KEY_BYTES: Final = 32  # KEY_BASE64 from Generate keys (fwknopd --key-gen)
HMAC_KEY_BYTES: Final = 64  # HMAC_KEY_BASE64 (the sha256 default)

SECURITY_HEADERS: Final = (
    ("Content-Security-Policy", ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                 "form-action 'self'; frame-ancestors 'self'; "
                                 "base-uri 'none'")),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
_REASONS: Final = {200: "OK", 303: "See Other", 400: "Bad Request", 403: "Forbidden",
                   404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
                   413: "Content Too Large", 415: "Unsupported Media Type",
                   500: "Internal Server Error"}
_TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
_STATIC: Final = Path(__file__).resolve().parent / "static"
_HTML: Final = "text/html; charset=utf-8"


def _new_keys() -> tuple[str, str]:
    return generate_keys(KEY_BYTES, HMAC_KEY_BYTES)


def _no_networks() -> Networks | None:
    return None


@dataclass
class WebConfig:
    """Everything the app needs from outside; tests replace any of it.

    Attributes:
        uci_path: /etc/config/fwknopd.
        secret_path: the CSRF secret (/etc/fwknopd-uci-web.secret).
        sessions: checks rpcd sessions (RpcdSessions or StandinSessions).
        reload_command: argv run by Save & Apply.
        status: the status panel's source, None for no panel.
        networks: lists netifd's logical networks (None: free text field).
        qr_renderer: qrsvg renderer name.
        qrencode: the qrencode command.
        keygen: makes (KEY_BASE64, HMAC_KEY_BASE64) for Generate keys.
        reload_timeout: seconds the reload command may take.
    """

    uci_path: Path
    secret_path: Path
    sessions: SessionChecker
    reload_command: Sequence[str] = DEFAULT_RELOAD
    status: StatusSource | None = None
    networks: Callable[[], Networks | None] = _no_networks
    qr_renderer: Renderer = "auto"
    qrencode: str = "qrencode"
    keygen: Callable[[], tuple[str, str]] = _new_keys
    reload_timeout: float = RELOAD_TIMEOUT


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = _HTML
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Request:
    environ: WSGIEnvironment
    method: str
    path: str
    root: str  # SCRIPT_NAME: "" or e.g. /cgi-bin/fwknopd-settings
    https: bool
    sid: str | None  # from the cookie, format-checked

    @property
    def cookie_path(self) -> str:
        return self.root or "/"


@dataclass
class _Notice:
    text: str
    kind: str = "info"  # info, success, warning, error


@dataclass
class _Loaded:
    pkg: UciPackage
    digest: str
    missing: bool


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _cookie_sid(header: str) -> str | None:
    for part in header.split(";"):
        name, _sep, value = part.strip().partition("=")
        if name == COOKIE:
            value = value.strip().strip('"')
            if valid_sid(value):
                return value
    return None


class SettingsApp:
    """The WSGI application of the settings page.

    Args:
        config: paths and collaborators (see WebConfig).
    """

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.csrf = CsrfTokens(config.secret_path)
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
                                      autoescape=True, undefined=jinja2.StrictUndefined,
                                      trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(_=_, ngettext=ngettext, fields=fields,
                                datatype=self._datatype)
        self.css = (_STATIC / "style.css").read_bytes()

    # -- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        try:
            request = self._request(environ)
            response = self._route(request)
        except Exception:  # the one top-level handler: log it, answer 500
            log.exception("settings page: internal error")
            response = _Response(500, self._plain_page(_("Internal error"), _(
                "The settings page failed; the router's log has the details. Nothing was "
                "changed unless the page said so.")))
        headers = [("Content-Type", response.content_type),
                   ("Content-Length", str(len(response.body))), *SECURITY_HEADERS,
                   *response.headers]
        start_response(f"{response.status} {_REASONS.get(response.status, 'Unknown')}",
                       headers)
        if environ.get("REQUEST_METHOD") == "HEAD":
            return [b""]
        return [response.body]

    def _request(self, environ: WSGIEnvironment) -> _Request:
        path = environ.get("PATH_INFO") or "/"
        https = str(environ.get("HTTPS", "")).lower() in ("on", "1") \
            or environ.get("wsgi.url_scheme") == "https"
        return _Request(environ, str(environ.get("REQUEST_METHOD", "GET")).upper(), path,
                        str(environ.get("SCRIPT_NAME", "")).rstrip("/"), https,
                        _cookie_sid(str(environ.get("HTTP_COOKIE", ""))))

    def _route(self, request: _Request) -> _Response:
        if request.path == "/login" and request.method == "POST":
            return self._login(request)
        sid = request.sid
        if sid is None or not self.config.sessions.access(sid, ACL_GROUP, "read"):
            return self._login_page(request, 403)
        routes: dict[str, tuple[str, ...]] = {"/": ("GET", "HEAD", "POST"),
                                              "/static/style.css": ("GET", "HEAD"),
                                              "/logout": ("POST",), "/login": ("POST",)}
        allowed = routes.get(request.path)
        if allowed is None:
            return _Response(404, self._plain_page(_("Not found"), _("There is no such page."),
                                                   request))
        if request.method not in allowed:
            return _Response(405, self._plain_page(_("Method not allowed"), _(
                "This page does not answer that request."), request),
                headers=[("Allow", ", ".join(allowed))])
        if request.path == "/static/style.css":
            return _Response(200, self.css, "text/css; charset=utf-8")
        try:
            if request.method == "POST":
                return self._post(request, sid)
            return self._show(request, sid)
        except _BadRequest as exc:
            return _Response(exc.status, self._plain_page(_("Request refused"), exc.message,
                                                          request))

    # -- sessions -------------------------------------------------------------------------

    def _login(self, request: _Request) -> _Response:
        try:
            self._check_post(request)
            data = self._form_data(request, _LOGIN_BODY)
        except _BadRequest as exc:
            return self._login_page(request, exc.status, exc.message)
        values = data.get("sessionid") or [""]
        sid = values[0]
        if not valid_sid(sid) or not self.config.sessions.access(sid, ACL_GROUP, "read"):
            return self._login_page(request, 403, _(
                "That LuCI session is not valid: it expired, is unknown, or may not see these "
                "settings. Log in to LuCI again."))
        cookie = f"{COOKIE}={sid}; HttpOnly; SameSite=Strict; Path={request.cookie_path}"
        if request.https:
            cookie += "; Secure"
        page = self._plain_page(_("Logged in"), _("Go to the settings page."), request)
        return _Response(303, page, headers=[("Location", f"{request.root}/"),
                                             ("Set-Cookie", cookie)])

    def _forget_cookie(self, request: _Request) -> tuple[str, str]:
        cookie = (f"{COOKIE}=; HttpOnly; SameSite=Strict; Path={request.cookie_path}; "
                  "Max-Age=0")
        return "Set-Cookie", cookie + ("; Secure" if request.https else "")

    def _login_page(self, request: _Request, status: int, error: str = "") -> _Response:
        headers = [self._forget_cookie(request)] if request.sid is not None else []
        body = self._render("login.html", root=request.root, error=error)
        return _Response(status, body, headers=headers)

    # -- requests -------------------------------------------------------------------------

    @staticmethod
    def _check_post(request: _Request) -> None:
        if str(request.environ.get("HTTP_SEC_FETCH_SITE", "")).lower() == "cross-site":
            raise _BadRequest(403, _("Requests from other sites are refused."))
        kind = str(request.environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
        if kind not in ("", "application/x-www-form-urlencoded"):
            raise _BadRequest(415, _("The form must be sent as "
                                     "application/x-www-form-urlencoded."))

    @staticmethod
    def _form_data(request: _Request, limit: int) -> PostData:
        text = str(request.environ.get("CONTENT_LENGTH") or "0").strip()
        if not (text.isascii() and text.isdigit()):
            raise _BadRequest(400, _("The request has no valid Content-Length."))
        length = int(text)
        if length > limit:
            raise _BadRequest(413, _("The form is too large."))
        body = request.environ["wsgi.input"].read(length) if length else b""
        try:
            return parse_qs(body.decode("ascii", "replace"), keep_blank_values=True,
                            max_num_fields=MAX_FIELDS, encoding="utf-8", errors="replace")
        except ValueError:
            raise _BadRequest(413, _("The form has too many fields.")) from None

    def _load(self) -> _Loaded:
        path = self.config.uci_path
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return _Loaded(UciPackage(), hashlib.sha256(b"").hexdigest(), True)
        except OSError as exc:
            raise UciError(f"cannot read the file: {exc.strerror or exc}", str(path)) from exc
        if len(data) > MAX_FILE_BYTES:
            raise UciError(f"the file is larger than {MAX_FILE_BYTES} bytes", str(path))
        pkg = parse(data.decode("utf-8", "surrogateescape"), str(path))
        return _Loaded(pkg, hashlib.sha256(data).hexdigest(), False)

    def _show(self, request: _Request, sid: str) -> _Response:
        try:
            loaded = self._load()
        except UciError as exc:
            return self._broken_file(request, exc)
        form = form_from_package(loaded.pkg, loaded.digest)
        networks = self.config.networks()
        if networks is not None and networks.wan and not form.network \
                and not form.config["PCAP_INTF"]:
            form.network = networks.wan  # preselect the detected WAN
        notice = None
        if loaded.missing:
            notice = _Notice(_("There is no /etc/config/fwknopd yet; saving creates it."),
                             "warning")
        return self._page(request, sid, loaded, form, notice=notice, networks=networks)

    def _post(self, request: _Request, sid: str) -> _Response:
        self._check_post(request)
        data = self._form_data(request, MAX_BODY)
        token = (data.get("csrf_token") or [""])[0]
        try:
            token_ok = self.csrf.check(sid, token)
        except CsrfError as exc:
            log.error("settings page: %s", exc)
            raise _BadRequest(500, _("The page's security token cannot be checked; nothing "
                                     "was changed.")) from None
        if not token_ok:
            raise _BadRequest(403, _("The form's security token is missing or wrong (an old "
                                     "page, or a request from elsewhere). Nothing was "
                                     "changed; reload the page."))
        if request.path == "/logout":
            page = self._plain_page(_("Logged out"), _("You are logged out."), request)
            return _Response(303, page, headers=[("Location", f"{request.root}/"),
                                                 self._forget_cookie(request)])
        if not self.config.sessions.access(sid, ACL_GROUP, "write"):
            raise _BadRequest(403, _("This LuCI session may view these settings but not "
                                     "change them. Nothing was changed."))
        try:
            loaded = self._load()
        except UciError as exc:
            return self._broken_file(request, exc)
        action = (data.get("action") or [""])[0]
        try:
            form = form_from_post(data, loaded.pkg)
        except FormConflict:
            return self._conflict(request, sid, loaded)
        except FormError as exc:
            raise _BadRequest(400, _("The form does not fit this page (%(why)s); reload the "
                                     "page.") % {"why": str(exc)}) from None
        if not form.digest:
            form.digest = loaded.digest
        if action in ("save", "apply"):
            return self._save(request, sid, loaded, form, apply_after=action == "apply")
        return self._edit(request, sid, loaded, form, action)

    def _edit(self, request: _Request, sid: str, loaded: _Loaded, form: Form,
              action: str) -> _Response:
        verb, _sep, number = action.partition("-")
        index = int(number) if number.isascii() and number.isdigit() and len(number) < 4 else -1
        if verb == "genkeys" and 0 <= index < len(form.stanzas):
            stanza = form.stanzas[index]
            stanza.key, stanza.hmac_key = self.config.keygen()
            stanza.key_type = stanza.hmac_key_type = "base64"
            notice = _Notice(_("New keys generated - Save to keep them."), "warning")
        elif action == "add" and len(form.stanzas) < MAX_STANZAS:
            form.stanzas.append(new_stanza())
            notice = _Notice(_("Stanza added - Save to keep it."), "warning")
        elif verb == "remove" and 0 <= index < len(form.stanzas):
            del form.stanzas[index]
            notice = _Notice(_("Stanza removed - Save to make it permanent."), "warning")
        elif action in ("reveal", "hide"):
            form.show_keys = action == "reveal"
            notice = None
        else:
            raise _BadRequest(400, _("Unknown action; nothing was changed."))
        return self._page(request, sid, loaded, form, notice=notice)

    def _save(self, request: _Request, sid: str, loaded: _Loaded, form: Form, *,
              apply_after: bool) -> _Response:
        # Read, compare and write under one lock, so that of two saves made
        # from the same page load exactly one wins and the other gets 409
        # (each CGI request is its own process: an flock, not a mutex).
        with self._write_lock():
            try:
                current = self._load()
            except UciError as exc:
                return self._broken_file(request, exc)
            if not form.digest or form.digest != current.digest:
                return self._conflict(request, sid, current)
            return self._save_locked(request, sid, current, form, apply_after=apply_after)

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        import fcntl

        lock_path = self.config.secret_path.with_suffix(".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _save_locked(self, request: _Request, sid: str, loaded: _Loaded, form: Form, *,
                     apply_after: bool) -> _Response:
        status = self._status(loaded.pkg)
        try:
            applied = apply(form, loaded.pkg)
        except FormConflict:
            return self._conflict(request, sid, loaded)
        problems = validate_package(loaded.pkg)
        if applied.errors or problems:
            at_fields, others = place_errors(loaded.pkg, form, applied, problems)
            count = sum(len(m) for m in at_fields.values()) + len(others)
            notice = _Notice(ngettext("Not saved: %(n)d problem, shown below.",
                                      "Not saved: %(n)d problems, shown below.", count)
                             % {"n": count}, "error")
            return self._page(request, sid, loaded, form, applied=applied, errors=at_fields,
                              general=others, notice=notice, code=400, status=status)
        try:
            save(self.config.uci_path, loaded.pkg)
        except UciError as exc:
            log.error("settings page: cannot save: %s", exc)
            notice = _Notice(_("Not saved: %(why)s") % {"why": exc.message}, "error")
            return self._page(request, sid, loaded, form, applied=applied, notice=notice,
                              code=500, status=status)
        log.info("settings saved to %s", self.config.uci_path)
        try:
            fresh = self._load()
        except UciError as exc:
            return self._broken_file(request, exc)
        code = 200
        notice = _Notice(_("Saved."), "success")
        if apply_after:
            failure = self._reload()
            if failure is None:
                notice = _Notice(_("Saved and applied."), "success")
            else:
                notice = _Notice(_("Saved, but applying failed: %(why)s") % {"why": failure},
                                 "error")
                code = 500
        saved = form_from_package(fresh.pkg, fresh.digest)
        saved.show_keys = form.show_keys
        return self._page(request, sid, fresh, saved, notice=notice, code=code)

    def _reload(self) -> str | None:
        argv = list(self.config.reload_command)
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=self.config.reload_timeout, check=False)
        except FileNotFoundError:
            return _("there is no %(command)s") % {"command": shown(argv[0])}
        except subprocess.TimeoutExpired:
            return _("%(command)s did not finish in %(seconds)d s") % {
                "command": shown(argv[0]), "seconds": self.config.reload_timeout}
        except OSError as exc:
            return _("cannot run %(command)s: %(why)s") % {"command": shown(argv[0]),
                                                          "why": exc.strerror or str(exc)}
        if done.returncode != 0:
            said = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
            tail = f": {shown(said[-1])}" if said else ""
            log.warning("reload command exited %d%s", done.returncode, tail)
            return _("%(command)s exited %(code)d%(tail)s") % {
                "command": shown(" ".join(argv)), "code": done.returncode, "tail": tail}
        log.info("reload command done: %s", " ".join(argv))
        return None

    def _conflict(self, request: _Request, sid: str, loaded: _Loaded) -> _Response:
        notice = _Notice(_("The configuration was changed elsewhere (another LuCI session or "
                           "the command line) after this page was loaded. Nothing was saved; "
                           "this is the current configuration."), "error")
        form = form_from_package(loaded.pkg, loaded.digest)
        return self._page(request, sid, loaded, form, notice=notice, code=409)

    def _broken_file(self, request: _Request, exc: UciError) -> _Response:
        log.error("settings page: %s", exc)
        line = f":{exc.line}" if exc.line is not None else ""
        return _Response(500, self._plain_page(_("Cannot read the configuration"), _(
            "/etc/config/fwknopd%(line)s: %(why)s. Fix the file (uci or an editor), then "
            "reload this page.") % {"line": line, "why": exc.message}, request))

    # -- rendering ------------------------------------------------------------------------

    def _status(self, pkg: UciPackage) -> DaemonStatus | None:
        return None if self.config.status is None else self.config.status.status(pkg)

    def _page(self, request: _Request, sid: str, loaded: _Loaded, form: Form, *,
              applied: Applied | None = None, errors: Mapping[str, list[str]] | None = None,
              general: Sequence[str] = (), notice: _Notice | None = None, code: int = 200,
              status: DaemonStatus | None = None,
              networks: Networks | None = None) -> _Response:
        writable = self.config.sessions.access(sid, ACL_GROUP, "write")
        if status is None:
            status = self._status(loaded.pkg)
        if applied is None:
            # The same writing as Save, onto this request's copy of the file
            # (never saved): the QR codes show the keys of the form as it is.
            applied = apply(form, loaded.pkg)
        if networks is None:
            networks = self.config.networks()
        qr = [self._qr(section) for section in applied.stanzas]
        try:
            token = self.csrf.token(sid)
        except CsrfError as exc:
            log.error("settings page: %s", exc)
            return _Response(500, self._plain_page(_("Internal error"), _(
                "The page's security token cannot be made; see the router's log."), request))
        body = self._render("page.html", root=request.root, form=form, errors=errors or {},
                            general=list(general), notice=notice, readonly=not writable,
                            csrf_token=token, qr=qr, status=status, networks=networks)
        return _Response(code, body)

    def _qr(self, section: UciSection) -> dict[str, Any] | None:
        text = qr_text(section)
        if not text:
            return None
        try:
            svg = qr_svg(text, self.config.qr_renderer, label=_("QR code of the keys"),
                         qrencode=self.config.qrencode)
            error = ""
        except QrError as exc:
            svg, error = "", str(exc)
        return {"svg": svg, "error": error, "warnings": qr_warnings(section)}

    @staticmethod
    def _datatype(section_type: str, option: str) -> str:
        datatype = option_datatype(section_type, option)
        return datatype.description if datatype is not None else ""

    def _render(self, template: str, **context: Any) -> bytes:
        text = self.env.get_template(template).render(**context)
        return text.encode("utf-8", "replace")

    def _plain_page(self, title: str, message: str, request: _Request | None = None) -> bytes:
        root = request.root if request is not None else ""
        try:
            return self._render("message.html", root=root, title=title, message=message)
        except jinja2.TemplateError:
            log.exception("settings page: the message template failed")
            return b"<!DOCTYPE html><title>Error</title><p>Internal error.</p>"
