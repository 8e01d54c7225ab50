"""Progress for long jobs: done/total, rate, ETA and failures, printed at most every `every` seconds.

Lines go through `logging` (logger "textinfuse.progress"), so they land in the terminal and in a
log file alike; a final line is always printed.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("textinfuse.progress")


def _fmt_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    def __init__(self, total: int, unit: str = "items", every: float = 2.0, already: int = 0):
        """`already`: items done by an earlier run (counted, but not in the rate)."""
        self.total, self.unit, self.every = total, unit, every
        self.done = self._already = already
        self.failures = 0
        self._t0 = time.monotonic()
        self._last = 0.0

    def advance(self, n: int, failures: int = 0) -> None:
        self.done += n
        self.failures += failures
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            log.info(self.line())

    def line(self) -> str:
        el = max(time.monotonic() - self._t0, 1e-9)
        rate = (self.done - self._already) / el
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / max(self.total, 1)
        return (f"{self.done}/{self.total} {self.unit} ({pct:.1f}%) {rate:.1f} {self.unit}/s "
                f"ETA {_fmt_eta(eta)} failures {self.failures}")

    def close(self) -> None:
        log.info(self.line() + " done")
