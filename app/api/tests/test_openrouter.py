"""The OpenRouter path against a local fake of its chat completions API."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .conftest import make_client

API_KEY = "sk-or-test-key-do-not-log"


class FakeOpenRouter:
    def __init__(self) -> None:
        self.responses: list[tuple[int, dict, float]] = []  # (status, body, delay s)
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                fake.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(self.rfile.read(length))}
                )
                status, body, delay = fake.responses.pop(0) if fake.responses else (500, {"error": "no script"}, 0)
                if delay:
                    time.sleep(delay)
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def tool_call(self, name: str, arguments: dict, call_id: str = "call_1") -> None:
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
            ],
        }
        self.responses.append((200, {"id": "gen-1", "choices": [{"index": 0, "message": message}]}, 0))

    def answer(self, text: str) -> None:
        message = {"role": "assistant", "content": text}
        self.responses.append((200, {"id": "gen-2", "choices": [{"index": 0, "message": message}]}, 0))


@pytest.fixture
def fake():
    server = FakeOpenRouter()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def ai_client(clean_db, fake):
    yield from make_client(
        database_url=clean_db,
        openrouter_api_key=API_KEY,
        openrouter_base_url=fake.url,
        openrouter_model="test/model",
        openrouter_timeout=2.0,
    )


def test_tool_call_then_final_answer(ai_client, fake):
    fake.tool_call("add_task", {"title": "buy milk"})
    fake.answer("Added 'buy milk' to your list.")
    r = ai_client.post("/api/alice/chat", json={"message": "please remember to buy milk"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["response"] == "Added 'buy milk' to your list."
    assert [c["name"] for c in body["tool_calls"]] == ["add_task"]
    assert body["tool_calls"][0]["arguments"] == {"title": "buy milk"}
    assert body["tool_calls"][0]["result"]["status"] == "created"
    assert [t["title"] for t in ai_client.get("/api/alice/tasks").json()] == ["buy milk"]

    assert len(fake.requests) == 2
    first, second = fake.requests
    assert first["path"] == "/api/v1/chat/completions"
    assert first["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert first["json"]["model"] == "test/model"
    assert {t["function"]["name"] for t in first["json"]["tools"]} == {
        "add_task", "list_tasks", "complete_task", "delete_task", "update_task",
    }
    assert first["json"]["messages"][0]["role"] == "system"
    assert first["json"]["messages"][-1] == {"role": "user", "content": "please remember to buy milk"}
    tool_msg = second["json"]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_1"
    assert json.loads(tool_msg["content"])["task"]["title"] == "buy milk"
    assert second["json"]["messages"][-2]["tool_calls"][0]["id"] == "call_1"

    messages = ai_client.get(f"/api/alice/conversations/{body['conversation_id']}/messages").json()
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"] == "Added 'buy milk' to your list."


def test_history_is_sent_on_later_turns(ai_client, fake):
    fake.answer("Hello! How can I help?")
    cid = ai_client.post("/api/alice/chat", json={"message": "hi"}).json()["conversation_id"]
    fake.tool_call("list_tasks", {})
    fake.answer("You have no tasks.")
    r = ai_client.post("/api/alice/chat", json={"conversation_id": cid, "message": "what's on my list?"})
    assert r.json()["response"] == "You have no tasks."
    sent = fake.requests[1]["json"]["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:4]] == [
        ("user", "hi"), ("assistant", "Hello! How can I help?"), ("user", "what's on my list?"),
    ]


def test_http_500_falls_back_to_interpreter(ai_client, fake, caplog):
    fake.responses.append((500, {"error": {"message": "upstream exploded"}}, 0))
    with caplog.at_level(logging.DEBUG):
        r = ai_client.post("/api/alice/chat", json={"message": "add buy bread"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tool_calls"][0]["name"] == "add_task"
    assert body["response"].startswith("Added task #")
    assert [t["title"] for t in ai_client.get("/api/alice/tasks").json()] == ["buy bread"]
    assert len(fake.requests) == 1
    assert "falling back" in caplog.text
    assert API_KEY not in caplog.text


def test_failure_after_a_tool_ran_does_not_repeat_it(ai_client, fake):
    fake.tool_call("add_task", {"title": "call mum"})
    fake.responses.append((502, {"error": "bad gateway"}, 0))
    r = ai_client.post("/api/alice/chat", json={"message": "add call mum"})
    assert r.status_code == 200
    assert [c["name"] for c in r.json()["tool_calls"]] == ["add_task"]
    assert "call mum" in r.json()["response"]
    assert [t["title"] for t in ai_client.get("/api/alice/tasks").json()] == ["call mum"]


def test_timeout_falls_back(ai_client, fake):
    fake.responses.append((200, {"choices": []}, 3.0))  # slower than the 2 s timeout
    started = time.monotonic()
    r = ai_client.post("/api/alice/chat", json={"message": "list"})
    assert time.monotonic() - started < 10
    assert r.status_code == 200
    assert r.json()["tool_calls"][0]["name"] == "list_tasks"


def test_unreachable_api_falls_back(clean_db):
    for client in make_client(
        database_url=clean_db,
        openrouter_api_key=API_KEY,
        openrouter_base_url="http://127.0.0.1:1/api/v1",
    ):
        r = client.post("/api/alice/chat", json={"message": "add water plants"})
        assert r.status_code == 200
        assert r.json()["tool_calls"][0]["result"]["task"]["title"] == "water plants"


def test_bad_tool_arguments_are_reported_to_the_model(ai_client, fake):
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c9", "type": "function", "function": {"name": "delete_task", "arguments": "{oops"}}],
    }
    fake.responses.append((200, {"choices": [{"message": message}]}, 0))
    fake.answer("Sorry, which task?")
    r = ai_client.post("/api/alice/chat", json={"message": "delete it"})
    assert r.json()["response"] == "Sorry, which task?"
    assert r.json()["tool_calls"][0]["result"] == {"error": "arguments are not a JSON object"}
