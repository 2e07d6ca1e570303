"""The HTTP helpers (web.py): loopback only, no environment proxy, answers of any status,
no answer as a fact, and the request loop, against a real local server."""

import json
import socket
import time

import pytest
from local_http import QuietHandler, serving

from shipcheck import web


class _Handler(QuietHandler):
    def do_GET(self):
        if self.path == "/health":
            self._send(200, b'{"status": "ok"}')
        elif self.path == "/bad-gateway":
            self._send(502, b"Bad Gateway\nupstream refused")
        else:
            self._send(404, b'{"detail": "not found"}')

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self._send(201, json.dumps({"id": 1, **body, "content_type": self.headers["content-type"]}).encode())


@pytest.fixture(scope="module")
def server_url():
    with serving(_Handler) as url:
        yield url


@pytest.fixture
def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/x", "http://localhost:8080/", "http://[::1]:80/", "https://127.0.0.2/"])
def test_loopback_urls_are_allowed(url):
    web.check_loopback(url)


@pytest.mark.parametrize("url, says", [
    ("http://10.0.0.1/", "not '10.0.0.1'"),
    ("http://example.com/", "not 'example.com'"),
    ("http://127.0.0.1:8080@example.com/", "not 'example.com'"),  # a path glued onto a base URL cannot escape
    ("file:///etc/passwd", r"only http\(s\) URLs are requested, not 'file'"),
    ("127.0.0.1:80/x", r"only http\(s\) URLs"),
])
def test_other_hosts_are_refused_before_any_request(url, says):
    with pytest.raises(web.NotLoopback, match=says):
        web.request("GET", url)


def test_an_environment_proxy_is_not_used_for_loopback(server_url, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # discard port: a proxied request would fail
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert web.http_get(server_url + "/health") == (200, '{"status": "ok"}')


def test_request_returns_any_status_with_body_and_headers(server_url):
    response = web.request("GET", server_url + "/bad-gateway")
    assert (response.status, response.body, response.answered) == (502, "Bad Gateway\nupstream refused", True)
    assert response.headers["content-length"] == "28" and response.duration_s >= 0


def test_request_sends_json_with_its_content_type(server_url):
    response = web.request("POST", server_url + "/tasks", json_body={"title": "t"})
    assert response.status == 201 and response.json() == {"id": 1, "title": "t", "content_type": "application/json"}


def test_no_answer_is_a_response_naming_the_error(closed_port_url):
    response = web.request("GET", closed_port_url + "/health", timeout_s=2)
    assert response.status is None and not response.answered
    assert response.error == "ConnectionRefusedError: [Errno 111] Connection refused"
    assert response.body == "no answer: ConnectionRefusedError: [Errno 111] Connection refused"
    assert web.http_get(closed_port_url) == (None, "no answer: ConnectionRefusedError: [Errno 111] Connection refused")
    assert web.http_json("POST", closed_port_url, {"a": 1})[0] is None


def test_short_forms(server_url):
    assert web.http_json("POST", server_url + "/tasks", {"title": "t"})[0] == 201
    assert web.http_json("GET", server_url + "/missing") == (404, {"detail": "not found"})
    assert web.http_json("GET", server_url + "/bad-gateway") == (502, "Bad Gateway\nupstream refused")


def test_the_request_loop_counts_failures_by_path_and_answer(server_url, closed_port_url):
    with web.RequestLoop([server_url + "/health", server_url + "/bad-gateway", closed_port_url + "/x"],
                         interval_s=0.01, max_s=0.3) as loop:
        time.sleep(0.5)
    result = loop.result
    assert result.total >= 3 and result.failed >= 2 and result.total - result.failed >= 1
    assert set(result.errors) == {"HTTP 502 /bad-gateway: Bad Gateway upstream refused", "no answer /x: ConnectionRefusedError"}
    assert str(result).startswith(f"{result.failed} failed of {result.total} requests in ")


def test_the_request_loop_refuses_other_hosts():
    with pytest.raises(web.NotLoopback):
        web.RequestLoop(["http://example.com/"])
