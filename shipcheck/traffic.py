"""Reaching the deployed app from the test machine, on loopback only.

- `port_forward`: `kubectl port-forward svc/X :PORT`, for the end-to-end checks and the
  screenshot. It pins one pod for its lifetime, so it cannot prove zero downtime.
- `service_proxy`: `kubectl proxy` to the API server's service proxy, which picks a ready
  endpoint for every request, as the Service does: the right path for a request loop
  across a rolling update.
- `RequestLoop` and `LoopResult` moved to web.py (HTTP helpers in one module); re-exported
  here for old callers (stage 5, tests/test_deploy_faults.py).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from typing import Iterator

from . import progress
from .web import LoopResult, RequestLoop  # noqa: F401  moved to web.py


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
