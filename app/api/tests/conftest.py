"""Fixtures: a real PostgreSQL (TEST_DATABASE_URL, or a throwaway server), migrated with
Alembic once per session and emptied before each test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from src.config import Settings
from src.db import normalize_database_url
from src.main import create_app
from src.migrate import upgrade

from .pg import PostgresUnavailable, TempPostgres


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if url:
        upgrade(url)
        yield url
        return
    server = None
    try:
        server = TempPostgres()
        url = server.start()
    except PostgresUnavailable as exc:
        if server is not None:
            server.stop()
        pytest.skip(f"no PostgreSQL for the database tests: {exc}")
    try:
        upgrade(url)
        yield url
    finally:
        server.stop()


@pytest.fixture
def clean_db(database_url: str) -> str:
    engine = create_engine(normalize_database_url(database_url))
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE messages, conversations, tasks RESTART IDENTITY CASCADE"))
    engine.dispose()
    return database_url


def make_client(**settings) -> Iterator[TestClient]:
    app = create_app(Settings(**settings))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(clean_db: str) -> Iterator[TestClient]:
    """The app on the test database with the built-in chat interpreter (no API key)."""
    yield from make_client(database_url=clean_db)
