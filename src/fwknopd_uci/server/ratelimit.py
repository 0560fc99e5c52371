# A bound on the log rate: a flood of junk that passes the pre-screen would
# otherwise write one "Non-corresponding HMAC" line per packet and push
# everything else out of a router's small log buffer (logread keeps 64 kB
# by default). Refusal lines beyond the budget of a one-second window are
# counted, and one summary line says how many were dropped. Grants and
# errors are never dropped, and with -v (debugging) nothing is.

from __future__ import annotations

__all__ = ["LINES_PER_SECOND", "LogBudget"]

LINES_PER_SECOND = 20


class LogBudget:
    def __init__(self, per_second: int = LINES_PER_SECOND) -> None:
        self.per_second = per_second
        self._window = -1
        self._used = 0
        self.suppressed = 0

    def allow(self, now: float) -> tuple[bool, int]:
        """(may this line be logged, lines suppressed in the previous window)."""
        window = int(now)
        reported = 0
        if window != self._window:
            reported, self.suppressed = self.suppressed, 0
            self._window, self._used = window, 0
        if self._used < self.per_second:
            self._used += 1
            return True, reported
        self.suppressed += 1
        return False, reported
