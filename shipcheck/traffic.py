"""Reaching the deployed app from the test machine, on loopback only.

- `port_forward`: `kubectl port-forward svc/X :PORT`, for the end-to-end checks and the
  screenshot. It pins one pod for its lifetime, so it cannot prove zero downtime.
- `service_proxy`: `kubectl proxy` to the API server's service proxy, which picks a ready
  endpoint for every request, as the Service does: the right path for a request loop
  across a rolling update.
- `RequestLoop`: a bounded loop of GETs in a thread, counting failures.
"""

from __future__ import annotations

import collections
import contextlib
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Iterator

from . import progress


@contextlib.contextmanager
def _background(argv: list[str], ready: re.Pattern, what: str, timeout_s: float = 30) -> Iterator[re.Match]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout_s
        seen = []
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line.strip())
            match = ready.search(line)
            if match:
                threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
                yield match
                return
        raise RuntimeError(f"{what} did not start within {timeout_s:g} s: {' | '.join(seen[-5:])}")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def port_forward(kubectl: list[str], namespace: str, service: str, port: int) -> Iterator[str]:
    """Yields http://127.0.0.1:LOCALPORT forwarding to one pod behind the Service."""
    argv = [*kubectl, "port-forward", "--namespace", namespace, "--address", "127.0.0.1", f"svc/{service}", f":{port}"]
    with _background(argv, re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)"), f"port-forward to {service}") as m:
        progress.say(f"port-forward 127.0.0.1:{m.group(1)} -> svc/{service}:{port}")
        yield f"http://127.0.0.1:{m.group(1)}"


@contextlib.contextmanager
def service_proxy(kubectl: list[str], namespace: str, service: str, port: int) -> Iterator[str]:
    """Yields the loopback base URL of the Service through the API server's service proxy."""
    argv = [*kubectl, "proxy", "--address", "127.0.0.1", "--port", "0"]
    with _background(argv, re.compile(r"Starting to serve on 127\.0\.0\.1:(\d+)"), "kubectl proxy") as m:
        yield f"http://127.0.0.1:{m.group(1)}/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"


@dataclass
class LoopResult:
    total: int = 0
    failed: int = 0
    errors: collections.Counter = field(default_factory=collections.Counter)
    duration_s: float = 0.0

    def __str__(self) -> str:
        top = ", ".join(f"{e} x{n}" for e, n in self.errors.most_common(3))
        return f"{self.failed} failed of {self.total} requests in {self.duration_s:.0f} s" + (f" ({top})" if top else "")


class RequestLoop:
    """GET `urls` round-robin every `interval_s` until stopped or `max_s` passed; a request
    fails on an error or a status other than 2xx."""

    def __init__(self, urls: list[str], interval_s: float = 0.1, max_s: float = 600, timeout_s: float = 5):
        self.urls, self.interval_s, self.max_s, self.timeout_s = urls, interval_s, max_s, timeout_s
        self.result = LoopResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        i = 0
        while not self._stop.is_set() and time.monotonic() - start < self.max_s:
            url = self.urls[i % len(self.urls)]
            i += 1
            self.result.total += 1
            try:
                with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                    resp.read()
            except urllib.error.HTTPError as exc:  # which path, and who answered (app or proxy)
                self.result.failed += 1
                body = exc.read(120).decode(errors="replace").replace("\n", " ")
                self.result.errors[f"HTTP {exc.code} {urllib.parse.urlsplit(url).path.rsplit('/proxy', 1)[-1]}: {body}"] += 1
            except Exception as exc:
                self.result.failed += 1
                self.result.errors[f"{type(exc).__name__} {urllib.parse.urlsplit(url).path.rsplit('/proxy', 1)[-1]}"] += 1
            self._stop.wait(self.interval_s)
        self.result.duration_s = time.monotonic() - start

    def __enter__(self) -> "RequestLoop":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
