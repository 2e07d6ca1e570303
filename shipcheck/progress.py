"""Progress lines for long work (builds, deploys, waits): `[shipcheck  12.3s] ...`, live.

Outside pytest they go to stderr. Under pytest (this module is also a plugin, registered by
shipcheck.plugin) they go to where pytest's own output goes -- a terminal, a file, a CI log
-- at once and unbuffered, past output capture: pytest's fd-level capture points file
descriptors 1 and 2 at temporary files while a test runs, so anything written to
sys.stdout, sys.__stderr__ or the terminal reporter during a test lands in that test's
captured output instead (shown only if it fails, and never as it happens). The plugin
duplicates stdout's descriptor before any test runs and writes each line there with one
os.write.

A failing test also gets its own lines as a "progress" section of its report (HTML log,
JUnit system-out): what it was doing when it failed. Passing tests do not (noise).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable

import pytest

from .commands import scrub

_lock = threading.Lock()
_start = time.monotonic()


def _to_stderr(line: str) -> None:
    print(line, file=sys.__stderr__, flush=True)


sink: Callable[[str], None] = _to_stderr
_recording: list[str] | None = None  # the running test's lines (under pytest)


def say(message: str) -> None:
    with _lock:
        line = f"[shipcheck {time.monotonic() - _start:6.1f}s] {scrub(message)}"
        sink(line)
        if _recording is not None:
            _recording.append(line)


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


class LiveOutput:
    """A sink writing to a duplicate of stdout's descriptor, taken while nothing is captured.

    The terminal reporter keeps its line open between results ("stages/test_01_build.py ..",
    or "stages/test_01_build.py::test_x " in -v mode): a progress line first ends that line.
    In -v mode the reporter is told to write the test's location again before its verdict;
    otherwise the next result letters simply continue on a line of their own."""

    def __init__(self, fd: int, reporter=None) -> None:
        self.fd, self.reporter = fd, reporter
        self._width = 0  # the reporter's line width when we last wrote

    def _reporter_line_open(self) -> bool:
        if self.reporter is None:
            return False
        # width_of_current_line counts only the reporter's own writes: unchanged since our
        # last line means the reporter wrote nothing since.
        width = getattr(getattr(self.reporter, "_tw", None), "width_of_current_line", 0)
        opened = width not in (0, self._width)
        self._width = width
        if isinstance(getattr(self.reporter, "currentfspath", None), str):  # -v: the test's location, written again
            opened, self.reporter.currentfspath = True, None
        return opened

    def __call__(self, line: str) -> None:
        lead = "\n" if self._reporter_line_open() else ""
        os.write(self.fd, (lead + line + "\n").encode("utf-8", "replace"))

    def close(self) -> None:
        os.close(self.fd)


# --- pytest plugin -----------------------------------------------------------------------------
_LIVE = pytest.StashKey[tuple]()


@pytest.hookimpl(trylast=True)  # after the terminal plugin's configure: its reporter exists then
def pytest_configure(config: pytest.Config) -> None:
    global sink
    try:
        fd = os.dup(sys.stdout.fileno())  # global capture is suspended during configure: the real stdout
    except (AttributeError, OSError, ValueError):  # stdout without a descriptor (an in-process run)
        return
    live = LiveOutput(fd, config.pluginmanager.get_plugin("terminalreporter"))
    config.stash[_LIVE] = (live, sink)
    sink = live


def pytest_unconfigure(config: pytest.Config) -> None:
    global sink
    live, previous = config.stash.get(_LIVE, (None, None))
    if live is not None:
        sink = previous  # a nested (pytester) session gives the outer one its sink back
        live.close()


def pytest_runtest_logstart(nodeid: str) -> None:
    global _recording
    _recording = []


def pytest_runtest_logfinish(nodeid: str) -> None:
    global _recording
    _recording = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed and _recording:
        text = "\n".join(_recording)
        # As diagnostics are attached: on this report for the HTML, on the item for the
        # teardown report, whose "Captured stdout" sections JUnit writes to <system-out>.
        report.sections.append(("Captured stdout progress", text))
        item.add_report_section(report.when, "stdout progress", text)
    return report
