"""Task CRUD against PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest

FIELDS = {"id", "user_id", "title", "description", "completed", "created_at", "updated_at"}


def create(client, user="alice", **body):
    body.setdefault("title", "buy milk")
    r = client.post(f"/api/{user}/tasks", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_and_get(client):
    task = create(client, title="  buy milk  ", description="2 litres")
    assert set(task) == FIELDS
    assert task["title"] == "buy milk"
    assert task["description"] == "2 litres"
    assert task["completed"] is False
    assert task["user_id"] == "alice"
    datetime.fromisoformat(task["created_at"])
    r = client.get(f"/api/alice/tasks/{task['id']}")
    assert r.status_code == 200
    assert r.json() == task


def test_list_is_ordered_and_filterable(client):
    assert client.get("/api/alice/tasks").json() == []
    a = create(client, title="a")
    b = create(client, title="b")
    assert [t["id"] for t in client.get("/api/alice/tasks").json()] == [a["id"], b["id"]]
    client.patch(f"/api/alice/tasks/{a['id']}/complete")
    assert [t["title"] for t in client.get("/api/alice/tasks?completed=true").json()] == ["a"]
    assert [t["title"] for t in client.get("/api/alice/tasks?completed=false").json()] == ["b"]


def test_update(client):
    task = create(client, description="old")
    r = client.put(f"/api/alice/tasks/{task['id']}", json={"title": "buy oat milk"})
    assert r.status_code == 200
    body = r.json()
    assert body["title"] == "buy oat milk"
    assert body["description"] == "old"  # untouched
    assert body["updated_at"] >= task["updated_at"]
    r = client.put(f"/api/alice/tasks/{task['id']}", json={"description": "new", "completed": True})
    assert r.json()["description"] == "new"
    assert r.json()["completed"] is True
    assert r.json()["title"] == "buy oat milk"


def test_complete_and_undo(client):
    task = create(client)
    r = client.patch(f"/api/alice/tasks/{task['id']}/complete")
    assert r.status_code == 200
    assert r.json()["completed"] is True
    r = client.patch(f"/api/alice/tasks/{task['id']}/complete", json={"completed": False})
    assert r.json()["completed"] is False
    r = client.patch(f"/api/alice/tasks/{task['id']}/complete", json={})
    assert r.json()["completed"] is True


def test_delete(client):
    task = create(client)
    r = client.delete(f"/api/alice/tasks/{task['id']}")
    assert r.status_code == 204
    assert r.content == b""
    assert client.get(f"/api/alice/tasks/{task['id']}").status_code == 404
    assert client.delete(f"/api/alice/tasks/{task['id']}").status_code == 404


def test_missing_task_is_404(client):
    for method, path in [
        ("get", "/api/alice/tasks/999"),
        ("put", "/api/alice/tasks/999"),
        ("patch", "/api/alice/tasks/999/complete"),
        ("delete", "/api/alice/tasks/999"),
    ]:
        kwargs = {"json": {"title": "x"}} if method == "put" else {}
        assert getattr(client, method)(path, **kwargs).status_code == 404, (method, path)


def test_users_are_isolated(client):
    mine = create(client, user="alice", title="alice's")
    create(client, user="bob", title="bob's")
    assert [t["title"] for t in client.get("/api/bob/tasks").json()] == ["bob's"]
    tid = mine["id"]
    assert client.get(f"/api/bob/tasks/{tid}").status_code == 404
    assert client.put(f"/api/bob/tasks/{tid}", json={"title": "hacked"}).status_code == 404
    assert client.patch(f"/api/bob/tasks/{tid}/complete").status_code == 404
    assert client.delete(f"/api/bob/tasks/{tid}").status_code == 404
    assert client.get(f"/api/alice/tasks/{tid}").json()["title"] == "alice's"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "   "},
        {"title": "x" * 201},
        {"title": None},
        {"title": "ok", "description": "d" * 2001},
    ],
)
def test_create_validation(client, body):
    assert client.post("/api/alice/tasks", json=body).status_code == 422


def test_title_limit_is_200(client):
    assert create(client, title="x" * 200)["title"] == "x" * 200


def test_update_validation(client):
    task = create(client)
    for body in ({"title": ""}, {"title": "x" * 201}, {"completed": "maybe"}):
        assert client.put(f"/api/alice/tasks/{task['id']}", json=body).status_code == 422
    assert client.get("/api/alice/tasks/not-a-number").status_code == 422
