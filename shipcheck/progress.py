"""Progress lines for long work (builds, deploys, waits), shown live even under capture.

The pytest plugin points `sink` at the terminal reporter; elsewhere lines go to stderr.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable

from .commands import scrub

_lock = threading.Lock()
_start = time.monotonic()
sink: Callable[[str], None] = lambda line: print(line, file=sys.__stderr__, flush=True)


def say(message: str) -> None:
    with _lock:
        sink(f"[shipcheck {time.monotonic() - _start:6.1f}s] {scrub(message)}")


class Ticker:
    """Says `what` is still going every `every_s` seconds, from a background thread."""

    def __init__(self, what: str, every_s: float = 15.0):
        self.what, self.every_s = what, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self.start = time.monotonic()

    def _tick(self) -> None:
        while not self._stop.wait(self.every_s):
            say(f"still {self.what} ({time.monotonic() - self.start:.0f} s)")

    def __enter__(self) -> "Ticker":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
