"""HTTP from the test machine to the app under test, on loopback only.

Every URL the suite requests is a published container port or a port-forward / `kubectl
proxy` on 127.0.0.1, so this module refuses any other host: a path from the configuration
can never send a request (or a captured token) elsewhere. Requests bypass any HTTP proxy of
the environment: urllib would otherwise send even 127.0.0.1 through `http_proxy` unless
`no_proxy` names it, and a corporate proxy cannot reach our loopback.

- `request`: one request, any method, headers and JSON body; a `Response` whatever answered.
- `http_get` / `http_json`: the two short forms the stages use.
- `RequestLoop`: a bounded loop of GETs in a thread, counting failures (zero-downtime proof).
"""

from __future__ import annotations

import collections
import http.client
import ipaddress
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

class NotLoopback(ValueError):
    """A URL whose host is not this machine's loopback."""


def check_loopback(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https"):
        raise NotLoopback(f"{url!r}: only http(s) URLs are requested, not {parts.scheme or 'no scheme'!r}")
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise NotLoopback(f"{url!r}: the suite requests loopback addresses only (127.0.0.1, a published port or a "
                      f"port-forward), not {host or 'no host'!r}")


class _LoopbackRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects on loopback only: an app answering `Location: http://elsewhere/`
    must not make the suite send its request (and headers) off the machine; that 3xx is
    then the answer, its Location header saying where it pointed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        try:
            check_loopback(newurl)
        except NotLoopback:
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is the answer (urllib raises it as an HTTPError, read like any other status)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No ProxyHandler from the environment: loopback is never proxied.
_OPENERS = {follow: urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                _LoopbackRedirects() if follow else _NoRedirects())
            for follow in (True, False)}


@dataclass
class Response:
    status: int | None  # None: nothing answered
    body: str  # the text of the answer; for no answer, what went wrong
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""  # "ConnectionRefusedError: ..." when nothing answered
    duration_s: float = 0.0

    @property
    def answered(self) -> bool:
        return self.status is not None

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        return json.loads(self.body)


def request(method: str, url: str, *, headers: dict[str, str] | None = None, json_body: Any = None,
            timeout_s: float = 10.0, follow_redirects: bool = True) -> Response:
    """Send one request; any status is a Response (4xx/5xx too), and so is no answer.
    Redirects are followed (on loopback only) unless `follow_redirects` is False, when
    the 3xx itself is the answer."""
    check_loopback(url)
    data = None
    all_headers = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body, default=str).encode()  # default: a YAML date (due: 2025-01-31) as its text
        if not any(k.lower() == "content-type" for k in all_headers):
            all_headers["content-type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method.upper(), headers=all_headers)
    start = time.monotonic()
    try:
        with _OPENERS[follow_redirects].open(req, timeout=timeout_s) as resp:
            body = resp.read().decode(errors="replace")
            return Response(resp.status, body, dict(resp.headers.items()), duration_s=time.monotonic() - start)
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        return Response(exc.code, body, dict(exc.headers.items()) if exc.headers else {},
                        duration_s=time.monotonic() - start)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, cut short
        reason = getattr(exc, "reason", exc)
        error = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else f"{type(exc).__name__}: {reason}"
        return Response(None, f"no answer: {error}", error=error, duration_s=time.monotonic() - start)


def http_get(url: str, timeout_s: float = 5.0) -> tuple[int | None, str]:
    """(status, body); (None, the error) when nothing answered."""
    response = request("GET", url, timeout_s=timeout_s)
    return response.status, response.body


def http_json(method: str, url: str, body: Any = None, timeout_s: float = 10.0) -> tuple[int | None, Any]:
    """(status, the body parsed as JSON, or its text when it is not JSON; None when empty).
    (None, "no answer: ...") when nothing answered."""
    response = request(method, url, headers={"content-type": "application/json"}, json_body=body, timeout_s=timeout_s)
    if not response.body:
        return response.status, None
    try:
        return response.status, response.json()
    except ValueError:
        return response.status, response.body


# --- a request loop across a rolling update --------------------------------------------------
@dataclass
class LoopResult:
    total: int = 0
    failed: int = 0
    errors: collections.Counter = field(default_factory=collections.Counter)
    duration_s: float = 0.0

    def __str__(self) -> str:
        top = ", ".join(f"{e} x{n}" for e, n in self.errors.most_common(3))
        return f"{self.failed} failed of {self.total} requests in {self.duration_s:.0f} s" + (f" ({top})" if top else "")


def _short_path(url: str) -> str:
    """The app's path of a URL, without the API server's service-proxy prefix."""
    return urllib.parse.urlsplit(url).path.rsplit("/proxy", 1)[-1]


class RequestLoop:
    """GET each of `targets` round-robin every `interval_s` until stopped or `max_s` passed; a
    request fails on an error or a status other than 2xx. Targets are loopback URLs, or any
    labels when `send(label) -> (status or None, body excerpt)` makes the request (the
    Kubernetes API server's service proxy, through the client)."""

    def __init__(self, targets: list[str], interval_s: float = 0.1, max_s: float = 600, timeout_s: float = 5,
                 send: Callable[[str], tuple[int | None, str]] | None = None):
        if send is None:
            for url in targets:
                check_loopback(url)
        self.targets, self.interval_s, self.max_s, self.timeout_s = targets, interval_s, max_s, timeout_s
        self.send = send or self._get
        self.result = LoopResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _get(self, url: str) -> tuple[int | None, str]:
        response = request("GET", url, timeout_s=self.timeout_s)
        return (response.status, response.body[:120]) if response.answered else (None, response.error.split(":")[0])

    def _run(self) -> None:
        start = time.monotonic()
        i = 0
        while not self._stop.is_set() and time.monotonic() - start < self.max_s:
            target = self.targets[i % len(self.targets)]
            i += 1
            self.result.total += 1
            try:
                status, body = self.send(target)
            except Exception as exc:  # no answer at all: counted, never raised from the thread
                status, body = None, type(exc).__name__
            if status is None or not 200 <= status < 300:  # which path, and who answered (app or proxy)
                self.result.failed += 1
                shown = _short_path(target) if "://" in target else target
                self.result.errors[f"{'HTTP ' + str(status) if status else 'no answer'} {shown}: "
                                   f"{body.replace(chr(10), ' ')[:120]}"] += 1
            self._stop.wait(self.interval_s)
        self.result.duration_s = time.monotonic() - start

    def __enter__(self) -> "RequestLoop":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
