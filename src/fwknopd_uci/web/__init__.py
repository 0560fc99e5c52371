# web/: the fwknopd settings page behind the router's LuCI login.
#
# A server-rendered WSGI application (app.py) with jinja2 templates: every
# setting of /etc/config/fwknopd with LuCI's labels and help, validated by
# the generator's own rules (openwrt/validate.py) before it is saved, and the
# Fwknop2 QR code of each access stanza. Sessions are LuCI's (rpcd) sessions
# (session.py), forms carry a CSRF token (csrf.py). Entry points: cgi.py for
# uhttpd, __main__.py for a standalone loopback server.

from __future__ import annotations

from .app import COOKIE, DEFAULT_RELOAD, SECURITY_HEADERS, SettingsApp, WebConfig
from .session import ACL_GROUP, RpcdSessions, SessionChecker, StandinSessions, valid_sid

__all__ = [
    "ACL_GROUP",
    "COOKIE",
    "DEFAULT_RELOAD",
    "SECURITY_HEADERS",
    "RpcdSessions",
    "SessionChecker",
    "SettingsApp",
    "StandinSessions",
    "WebConfig",
    "valid_sid",
]
