"""Chat with the built-in interpreter (no OPENROUTER_API_KEY), end to end."""

from __future__ import annotations


def say(client, message, conversation_id=None, user="alice"):
    body = {"message": message}
    if conversation_id is not None:
        body["conversation_id"] = conversation_id
    r = client.post(f"/api/{user}/chat", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_tools_end_to_end(client):
    first = say(client, "add buy milk")
    cid = first["conversation_id"]
    assert isinstance(cid, int)
    assert first["tool_calls"][0]["name"] == "add_task"
    assert first["tool_calls"][0]["arguments"] == {"title": "buy milk"}
    tid = first["tool_calls"][0]["result"]["task"]["id"]
    assert f"#{tid}" in first["response"]
    assert [t["title"] for t in client.get("/api/alice/tasks").json()] == ["buy milk"]

    listed = say(client, "list", cid)
    assert listed["conversation_id"] == cid
    assert listed["tool_calls"][0]["name"] == "list_tasks"
    assert listed["tool_calls"][0]["result"]["count"] == 1
    assert "buy milk" in listed["response"]

    updated = say(client, f"update {tid} buy oat milk", cid)
    assert updated["tool_calls"][0]["name"] == "update_task"
    assert client.get(f"/api/alice/tasks/{tid}").json()["title"] == "buy oat milk"

    done = say(client, f"complete {tid}", cid)
    assert done["tool_calls"][0]["name"] == "complete_task"
    assert client.get(f"/api/alice/tasks/{tid}").json()["completed"] is True
    assert "buy oat milk" in say(client, "list completed", cid)["response"]
    assert say(client, "list pending", cid)["response"] == "You have no pending tasks."

    deleted = say(client, f"delete {tid}", cid)
    assert deleted["tool_calls"][0]["name"] == "delete_task"
    assert client.get("/api/alice/tasks").json() == []


def test_help_for_anything_else(client):
    reply = say(client, "what can you do?")
    assert reply["tool_calls"] == []
    assert "add" in reply["response"] and "list" in reply["response"]


def test_tool_errors_are_replies_not_failures(client):
    reply = say(client, "complete 12345")
    assert reply["tool_calls"][0]["result"] == {"error": "task 12345 not found"}
    assert "not found" in reply["response"]
    reply = say(client, "add " + "x" * 201)
    assert "error" in reply["tool_calls"][0]["result"]
    assert client.get("/api/alice/tasks").json() == []


def test_chat_only_touches_own_tasks(client):
    bobs = client.post("/api/bob/tasks", json={"title": "bob's"}).json()
    reply = say(client, f"delete {bobs['id']}")
    assert "error" in reply["tool_calls"][0]["result"]
    assert client.get(f"/api/bob/tasks/{bobs['id']}").status_code == 200
    assert say(client, "list")["tool_calls"][0]["result"]["count"] == 0


def test_conversation_is_persisted(client):
    first = say(client, "add eggs")
    cid = first["conversation_id"]
    say(client, "list", cid)
    messages = client.get(f"/api/alice/conversations/{cid}/messages").json()
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "add eggs"),
        ("assistant", first["response"]),
        ("user", "list"),
        ("assistant", messages[3]["content"]),
    ]
    assert "eggs" in messages[3]["content"]
    # Without conversation_id a new conversation starts.
    assert say(client, "list")["conversation_id"] != cid


def test_unknown_or_foreign_conversation_is_404(client):
    r = client.post("/api/alice/chat", json={"conversation_id": 999, "message": "list"})
    assert r.status_code == 404
    cid = say(client, "list")["conversation_id"]
    r = client.post("/api/bob/chat", json={"conversation_id": cid, "message": "list"})
    assert r.status_code == 404
    assert client.get(f"/api/bob/conversations/{cid}/messages").status_code == 404


def test_chat_validation(client):
    assert client.post("/api/alice/chat", json={"message": ""}).status_code == 422
    assert client.post("/api/alice/chat", json={}).status_code == 422
    assert client.post("/api/alice/chat", json={"message": "x" * 4001}).status_code == 422
