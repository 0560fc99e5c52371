# Logging for the router owner: plain one-line messages, to stderr in the
# foreground (-f) and to syslog otherwise (or also, with --syslog-enable),
# as the C daemon does (spa-protocol.md 6.3, "Log verbosity"). The standard
# logging levels are mapped to syslog priorities by the handler.

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

__all__ = ["FACILITIES", "LOGGER_NAME", "setup_logging"]

LOGGER_NAME = "fwknopd"
FACILITIES = {
    "LOG_DAEMON": logging.handlers.SysLogHandler.LOG_DAEMON,
    **{f"LOG_LOCAL{i}": getattr(logging.handlers.SysLogHandler, f"LOG_LOCAL{i}")
       for i in range(8)},
}
SYSLOG_SOCKET = "/dev/log"


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
        syslog = logging.handlers.SysLogHandler(
            address=SYSLOG_SOCKET, facility=FACILITIES.get(facility, FACILITIES["LOG_DAEMON"]))
        syslog.ident = f"{identity}[{os.getpid()}]: "
        syslog.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(syslog)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger
