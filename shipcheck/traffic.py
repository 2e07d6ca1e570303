"""A deployed Service on loopback: `kubectl port-forward svc/X :PORT`, for the declared checks
and the browser. It pins one pod for its lifetime, so it cannot prove zero downtime: the
request loop goes through the API server's service proxy instead (kube.service_request).
"""

from __future__ import annotations

import contextlib
import re
from typing import Iterator

from . import commands, progress

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


@contextlib.contextmanager
def port_forward(kubectl: list[str], namespace: str, service: str, port: int) -> Iterator[str]:
    """Yields http://127.0.0.1:LOCALPORT forwarding to one pod behind the Service."""
    argv = [*kubectl, "port-forward", "--namespace", namespace, "--address", "127.0.0.1", f"svc/{service}", f":{port}"]
    with commands.background(argv, FORWARDING, f"port-forward to {service}") as match:
        progress.say(f"port-forward 127.0.0.1:{match.group(1)} -> svc/{service}:{port}")
        yield f"http://127.0.0.1:{match.group(1)}"
