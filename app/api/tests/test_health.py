"""Liveness and readiness."""

from __future__ import annotations

import logging

from .conftest import make_client


def test_health_without_database():
    for client in make_client(database_url=None):
        assert client.get("/health").json() == {"status": "ok"}
        r = client.get("/ready")
        assert r.status_code == 503
        assert r.json()["status"] == "not ready"
        assert r.json()["reason"] == "database not configured"
        # Task and chat routes answer 503, not 500, until a database is configured.
        assert client.get("/api/alice/tasks").status_code == 503
        assert client.post("/api/alice/chat", json={"message": "list"}).status_code == 503


def test_ready_with_database(client):
    r = client.get("/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def test_ready_with_unreachable_database(caplog):
    # A closed port on loopback: the connection is refused at once.
    url = "postgresql://todo:s3cret-pw@127.0.0.1:1/todo?sslmode=disable"
    with caplog.at_level(logging.INFO):
        for client in make_client(database_url=url):
            assert client.get("/health").status_code == 200
            r = client.get("/ready")
            assert r.status_code == 503
            assert r.json() == {"status": "not ready", "reason": "database not reachable"}
            assert client.get("/api/alice/tasks").status_code == 503
    assert "s3cret-pw" not in r.text
    assert "s3cret-pw" not in caplog.text
    assert "todo:***@127.0.0.1:1/todo" in caplog.text


def test_ready_with_invalid_url(caplog):
    with caplog.at_level(logging.INFO):
        for client in make_client(database_url="mysql://root:hunter2@db/x"):
            r = client.get("/ready")
            assert r.status_code == 503
            assert r.json()["reason"] == "database URL invalid"
    assert "hunter2" not in caplog.text
