"""Waiting and retrying, in wall-clock seconds.

`wait_until` polls a probe until a predicate holds, a fatal state shows up, or time runs
out, and returns what it saw last: the caller decides pass or fail. `retry` repeats a
call that failed transiently (API 5xx, connection refused during start-up) with
exponential backoff; anything else fails at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from . import progress

T = TypeVar("T")


@dataclass
class WaitResult:
    what: str
    ok: bool
    state: Any  # the last probed value (or the last transient error)
    elapsed_s: float
    reason: str = ""  # why it stopped when not ok: "timed out after N s" or the fatal state

    def __bool__(self) -> bool:
        return self.ok


def wait_until(what: str, probe: Callable[[], T], *, done: Callable[[T], bool], timeout_s: float,
               interval_s: float = 1.0, fatal: Callable[[T], str | None] = lambda state: None,
               transient: tuple[type[BaseException], ...] | Callable[[BaseException], bool] = (ConnectionError,),
               describe: Callable[[T], str] = repr, say_every_s: float = 10.0) -> WaitResult:
    start = time.monotonic()
    deadline = start + timeout_s
    last_said = start
    state: Any = None
    is_transient = transient if callable(transient) and not isinstance(transient, tuple) else (
        lambda exc: isinstance(exc, transient))  # type: ignore[arg-type]
    while True:
        try:
            state = probe()
        except Exception as exc:
            if not is_transient(exc):  # an answer that waiting cannot change: say it
                raise
            state = exc  # e.g. the server is still starting
        else:
            if done(state):
                return WaitResult(what, True, state, time.monotonic() - start)
            reason = fatal(state)
            if reason:
                return WaitResult(what, False, state, time.monotonic() - start, reason)
        now = time.monotonic()
        if now >= deadline:
            return WaitResult(what, False, state, now - start, f"timed out after {timeout_s:g} s")
        if now - last_said >= say_every_s:
            shown = str(state) if isinstance(state, BaseException) else describe(state)
            progress.say(f"waiting for {what}: {shown} ({now - start:.0f}/{timeout_s:g} s)")
            last_said = now
        time.sleep(min(interval_s, max(0.0, deadline - now)))


def retry(what: str, call: Callable[[], T], *, is_transient: Callable[[BaseException], bool],
          attempts: int = 3, first_delay_s: float = 1.0) -> T:
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            progress.say(f"{what}: {type(exc).__name__}: {str(exc)[:200]}; retrying in {delay:g} s "
                         f"(attempt {attempt + 1} of {attempts})")
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
