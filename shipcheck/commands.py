"""One runner for every subprocess (docker build, helm, kubectl, hadolint).

Arguments are lists, never shell strings. Every result keeps the command, exit code and
output; secret values registered with `redact()` are replaced before anything is logged,
shown in a failure, or written to a report.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Sequence

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
    argv = [str(a) for a in argv]
    full_env = {**os.environ, **env} if env else None
    log.debug("run: %s", scrub(" ".join(argv)))
    start = time.monotonic()
    try:
        if on_line is None:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout_s, env=full_env, input=input_text, cwd=cwd
            )
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        else:
            rc, out, err = _run_streaming(argv, on_line, full_env, cwd, timeout_s)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        rc, err = -9, err + f"\ntimed out after {timeout_s} s"
    except FileNotFoundError:
        rc, out, err = 127, "", f"{argv[0]}: command not found"
    result = CommandResult(argv, rc, out, err, time.monotonic() - start)
    log.debug("%r", result)
    if check and not result.ok:
        raise CommandError(result, what)
    return result


def _run_streaming(argv, on_line, env, cwd, timeout_s) -> tuple[int, str, str]:
    lines: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd) as proc:
        def read() -> None:  # in a thread, so a process that goes silent still times out
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = scrub(raw.rstrip("\n"))
                lines.append(line)
                on_line(line)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reader.join(5)
            return -9, "\n".join(lines), f"timed out after {timeout_s} s"
        reader.join()
    return proc.returncode, "\n".join(lines), ""
