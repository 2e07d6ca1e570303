"""One runner for every subprocess (docker build, helm, kubectl, hadolint, chromium), in the
foreground (`run`) or the background (`start`, `background`): no other module starts one.

Arguments are lists, never shell strings. Every result keeps the command, exit code and
output; secret values registered with `redact()` are replaced before anything is logged,
shown in a failure, or written to a report.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

log = logging.getLogger("shipcheck")

_SECRETS: set[str] = set()
MASK = "******"


# A string shorter than this is never masked, the value or any form derived from it: a
# 1-3 character string ("1", "on", "dev", a two-letter line of a multi-line value) occurs
# in ordinary text, so masking it would garble every log line and report (masking "1"
# removes every digit, and with it every figure) while hiding nothing: a secret that
# short is guessed in a few thousand tries. Refuse such a secret as input, do not rely on
# masking it.
MIN_SECRET_LEN = 4


def redact(*values: str | None) -> None:
    """Register secret values; they, and the forms they take in logs and reports (see
    `derived_forms`), are masked in every later log line and report."""
    for value in values:
        if value and len(value) >= MIN_SECRET_LEN:
            _SECRETS.update(f for f in derived_forms(value) if len(f) >= MIN_SECRET_LEN)


def derived_forms(value: str) -> set[str]:
    """The value and the forms it takes on its way into output: URL-encoded or -decoded, base64
    (standard and URL-safe, padded or not, and embedded in a longer encoded string), each line
    of a multi-line value, the password of a URL (`postgresql://user:PASSWORD@host/db`), and
    escaped inside a repr() or a JSON string."""
    pieces = {value, value.strip()}
    pieces.update(line.strip() for line in value.splitlines())
    try:
        password = urllib.parse.urlsplit(value.strip()).password
    except ValueError:  # not a URL (an unbalanced "[" in the netloc ...)
        password = None
    if password:
        pieces.update({password, urllib.parse.unquote(password)})
    forms: set[str] = set()
    for piece in filter(None, pieces):
        forms.update({piece, urllib.parse.quote(piece, safe=""), urllib.parse.quote(piece),
                      urllib.parse.quote_plus(piece), urllib.parse.unquote(piece), urllib.parse.unquote_plus(piece),
                      repr(piece)[1:-1], json.dumps(piece)[1:-1], json.dumps(piece, ensure_ascii=False)[1:-1]})
        forms.update(_base64_forms(piece.encode()))
    return forms


def _base64_forms(data: bytes) -> set[str]:
    """Base64 of `data` alone (padded and not), and the part of the base64 of any longer string
    containing `data` that depends on `data` alone: base64 encodes 3 bytes as 4 characters, so
    an embedded value's characters depend on where it starts modulo 3 (3 alignments), and
    the first and last characters also carry bits of the neighbouring bytes (dropped here).
    Each in both alphabets (standard +/ and URL-safe -_)."""
    forms = {base64.b64encode(data).decode()}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode().rstrip("=")
        lead = (0, 2, 3)[offset]  # characters carrying bits of the bytes before the value
        tail = 1 if (offset + len(data)) % 3 else 0  # the last one carries bits of the bytes after it
        forms.add(encoded[lead:len(encoded) - tail])
    forms |= {f.rstrip("=") for f in forms}
    return forms | {f.translate(_URLSAFE) for f in forms}


_URLSAFE = str.maketrans("+/", "-_")


def scrub(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class CommandError(RuntimeError):
    def __init__(self, result: "CommandResult", what: str = ""):
        self.result = result
        super().__init__(f"{what + ': ' if what else ''}{result!r}\n{result.tail()}")


@dataclass
class CommandResult:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def command(self) -> str:
        return scrub(" ".join(self.argv))

    def tail(self, lines: int = 30, both: bool = False) -> str:
        """The last lines of stderr, or of stdout when stderr is empty; with `both`, of stdout
        then stderr (for tools that report on one stream and log on the other, as helm test)."""
        streams = (self.stdout, self.stderr) if both else (self.stderr.strip() or self.stdout,)
        text = "\n".join(s.strip() for s in streams if s.strip()).splitlines()
        return scrub("\n".join(text[-lines:]))

    def __repr__(self) -> str:
        return f"CommandResult({self.command!r}, rc={self.rc}, {self.duration_s:.1f} s)"


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout_s: float | None = None,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
    cwd: str | os.PathLike | None = None,
    what: str = "",
    on_line: Callable[[str], None] | None = None,
) -> CommandResult:
    """Run argv to completion and return its result; raise CommandError when check fails.

    With `on_line`, stdout and stderr are merged and each (scrubbed) line is passed to it
    as it arrives: progress for long work such as image builds.
    """
    __tracebackhide__ = True
    process = start(argv, env=env, input_text=input_text, cwd=cwd, on_line=on_line)
    if process.started:
        process.wait(timeout_s)
        if process.running:
            process.stop(f"timed out after {timeout_s} s", grace_s=0)
    result = process.result()
    if check and not result.ok:
        raise CommandError(result, what)
    return result


class Process:
    """A command running in the background; its output is collected as it arrives (so a
    chatty process never blocks on a full pipe). `stop` ends it, `result` sums it up.

    `die_with_parent` asks the kernel to stop the process when the thread that started it
    dies, so a killed test run does not leave helm changing a release with nobody watching.
    """

    def __init__(self, argv: Sequence[str], *, env: dict[str, str] | None = None, input_text: str | None = None,
                 cwd: str | os.PathLike | None = None, on_line: Callable[[str], None] | None = None,
                 die_with_parent: bool = False):
        self.argv = [str(a) for a in argv]
        self.on_line = on_line
        self.stopped = ""  # why it was stopped, if it was
        self._out: list[str] = []
        self._err: list[str] = []
        self._start = time.monotonic()
        self._end: float | None = None
        log.debug("start: %s", scrub(" ".join(self.argv)))
        try:
            self.proc: subprocess.Popen | None = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT if on_line else subprocess.PIPE, text=True,
                env={**os.environ, **env} if env else None, cwd=cwd,
                preexec_fn=_die_with_parent if die_with_parent else None)
        except FileNotFoundError:
            self.proc = None
            self._err.append(f"{self.argv[0]}: command not found")
            self._end = self._start
            return
        self._readers = [self._reader(self.proc.stdout, self._out, on_line)]
        if not on_line:
            self._readers.append(self._reader(self.proc.stderr, self._err, None))
        if input_text is not None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write(input_text)
                self.proc.stdin.close()
            except BrokenPipeError:  # it exited before reading: its output says why
                pass

    @staticmethod
    def _reader(stream, lines: list[str], on_line) -> threading.Thread:
        def read() -> None:
            for raw in stream:
                if on_line:  # streamed lines are kept as shown: scrubbed, one per entry
                    line = scrub(raw.rstrip("\n"))
                    lines.append(line + "\n")
                    on_line(line)
                else:
                    lines.append(raw)
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread

    @property
    def started(self) -> bool:
        return self.proc is not None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def elapsed_s(self) -> float:
        return (self._end or time.monotonic()) - self._start

    def output(self) -> str:
        """What it printed so far (stdout, and stderr when merged), scrubbed."""
        return scrub("".join(self._out))

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until it exits or timeout_s passes; True when it has exited."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        self._finish()
        return True

    def stop(self, reason: str, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after grace_s; remembers why."""
        if not self.running:
            return
        assert self.proc is not None
        self.stopped = reason
        self.proc.terminate() if grace_s else self.proc.kill()
        try:
            self.proc.wait(timeout=grace_s or None)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._finish()

    def _finish(self) -> None:
        if self._end is None:
            for reader in getattr(self, "_readers", []):
                reader.join(5)
            self._end = time.monotonic()

    def result(self) -> CommandResult:
        if self.proc is None:
            rc = 127
        else:
            self.wait()
            rc = -9 if self.stopped and self.proc.returncode in (-9, -15) else self.proc.returncode
        err = "".join(self._err) + (f"\n{self.stopped}" if self.stopped else "")
        out = "".join(self._out)
        result = CommandResult(self.argv, rc, out[:-1] if self.on_line and out.endswith("\n") else out, err,
                               self.elapsed_s)
        log.debug("%r", result)
        return result

    def __repr__(self) -> str:
        state = "running" if self.running else f"stopped ({self.stopped})" if self.stopped else "exited"
        return f"<Process {scrub(' '.join(self.argv[:4]))} ... {state}, {self.elapsed_s:.1f} s>"


def start(argv: Sequence[str], **kwargs) -> Process:
    """Start argv in the background (see Process); the caller waits, watches or stops it."""
    return Process(argv, **kwargs)


def _die_with_parent() -> None:  # runs in the child, before exec
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def background(argv: Sequence[str], ready: re.Pattern, what: str, timeout_s: float = 30) -> Iterator[re.Match]:
    """Run a long-lived helper (kubectl port-forward) for the length of a `with` block, once
    a line of its output matches `ready`; yields that match. Stopped on leaving."""
    found: list[re.Match] = []
    event = threading.Event()

    def on_line(line: str) -> None:
        match = ready.search(line)
        if match and not found:
            found.append(match)
            event.set()

    process = start(argv, on_line=on_line)
    try:
        deadline = time.monotonic() + timeout_s
        while not event.wait(0.1):
            if not process.running or time.monotonic() > deadline:
                tail = " | ".join(process.output().splitlines()[-5:])
                raise RuntimeError(f"{what} did not start within {timeout_s:g} s: {tail or 'no output'}")
        yield found[0]
    finally:
        process.stop(f"{what} no longer needed", grace_s=5)


def running_commands(match: Callable[[list[str]], bool]) -> list[tuple[int, list[str]]]:
    """(pid, argv) of processes on this machine whose argv `match` accepts (read from /proc):
    how a run finds a helm that a killed run left behind."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
        except OSError:
            continue
        if argv and match(argv):
            found.append((int(entry.name), argv))
    return found
