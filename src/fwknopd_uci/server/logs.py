# Logging for the router owner: plain one-line messages, to stderr in the
# foreground (-f) and to syslog otherwise (or also, with --syslog-enable),
# as the C daemon does (spa-protocol.md 6.3, "Log verbosity"). The standard
# logging levels are mapped to syslog priorities by the handler.
#
# Why a syslog handler of our own: logging.handlers pulls in pickle, queue
# and a dozen other modules for handlers we never use, about 0.6 MB of the
# daemon's 20 MB idle RSS budget (measured with Python 3.11). SyslogHandler
# below does the one thing needed: each record is one datagram to the local
# syslog socket, "<PRI>ident[pid]: message", as openlog(LOG_PID) + syslog()
# write it.

from __future__ import annotations

import logging
import os
import socket
import sys

__all__ = ["FACILITIES", "LOGGER_NAME", "SYSLOG_SOCKET", "SyslogHandler", "setup_logging"]

LOGGER_NAME = "fwknopd"
PACKAGE_LOGGER = "fwknopd_uci"
# SYSLOG_FACILITY names -> facility codes (<syslog.h>, before the << 3).
FACILITIES = {"LOG_DAEMON": 3, **{f"LOG_LOCAL{i}": 16 + i for i in range(8)}}
SYSLOG_SOCKET = "/dev/log"

# Syslog severities (<syslog.h>) for the standard logging levels, highest
# level first; anything below INFO is debug.
_SEVERITIES = (
    (logging.CRITICAL, 2),  # LOG_CRIT
    (logging.ERROR, 3),     # LOG_ERR
    (logging.WARNING, 4),   # LOG_WARNING
    (logging.INFO, 6),      # LOG_INFO
)
_LOG_DEBUG = 7


def syslog_severity(levelno: int) -> int:
    """The syslog severity for a logging level (CRITICAL -> 2 ... DEBUG -> 7)."""
    for level, severity in _SEVERITIES:
        if levelno >= level:
            return severity
    return _LOG_DEBUG


class SyslogHandler(logging.Handler):
    """Sends each record as one datagram to a local (AF_UNIX) syslog socket.

    Like openlog(), a socket that is not there yet is no error: the handler
    connects on the first record and reconnects once when a send fails (the
    syslog daemon restarted). A record that still cannot be sent goes to
    logging's handleError, so logging never takes the daemon down.

    Args:
        address: the socket path, normally /dev/log.
        facility: a FACILITIES value.
        ident: the tag before "[pid]: ", SYSLOG_IDENTITY.
    """

    def __init__(self, address: str = SYSLOG_SOCKET, *, facility: int = FACILITIES["LOG_DAEMON"],
                 ident: str = "fwknopd") -> None:
        super().__init__()
        self.address = address
        self.facility = facility
        self.ident = ident
        self._sock: socket.socket | None = None
        try:
            self._connect()
        except OSError:
            pass  # syslogd may start after us; emit() tries again

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.connect(self.address)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        return sock

    def _disconnect(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def datagram(self, record: logging.LogRecord) -> bytes:
        """The bytes sent for one record: "<PRI>ident[pid]: message\\0"."""
        priority = self.facility << 3 | syslog_severity(record.levelno)
        # The pid of the process that logged (the daemon forks after the
        # handler is set up). The trailing NUL is what logging.handlers sent
        # before; syslog daemons strip it. backslashreplace, as on stderr,
        # so a non-UTF-8 ident or message is still delivered.
        pid = record.process if record.process is not None else os.getpid()
        text = f"<{priority}>{self.ident}[{pid}]: {self.format(record)}\0"
        return text.encode("utf-8", "backslashreplace")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = self.datagram(record)
            sock = self._sock if self._sock is not None else self._connect()
            try:
                sock.send(data)
            except OSError:
                # The syslog daemon restarted (or is gone): one fresh try.
                self._disconnect()
                self._connect().send(data)
        except Exception:  # noqa: BLE001 - logging must not raise; handleError reports
            self._disconnect()
            self.handleError(record)

    def close(self) -> None:
        self.acquire()
        try:
            self._disconnect()
        finally:
            self.release()
        super().close()


def setup_logging(*, verbosity: int, to_stderr: bool, to_syslog: bool,
                  identity: str = "fwknopd", facility: str = "LOG_DAEMON") -> logging.Logger:
    """Configure the package logger once; returns it.

    verbosity 0 logs INFO and above, 1 or more adds DEBUG (each -v).
    """
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG if verbosity > 0 else logging.INFO)
    logger.propagate = False
    if to_stderr:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(stream)
    if to_syslog and os.path.exists(SYSLOG_SOCKET):
        syslog = SyslogHandler(SYSLOG_SOCKET, ident=identity,
                               facility=FACILITIES.get(facility, FACILITIES["LOG_DAEMON"]))
        syslog.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(syslog)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    # The library modules log under their own names (fwknopd_uci.firewall...,
    # e.g. "firewall.repair"); send those to the same place, at the same level.
    package = logging.getLogger(PACKAGE_LOGGER)
    package.handlers = list(logger.handlers)
    package.setLevel(logger.level)
    package.propagate = False
    return logger
