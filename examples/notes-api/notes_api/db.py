"""Database engine, the Note model and the schema migrations."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from sqlalchemy import DateTime, Engine, String, Text, create_engine, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

log = logging.getLogger("notes_api.db")

# Any fixed 64-bit number shared by every replica: "notes" in ASCII.
MIGRATION_LOCK_ID = 0x6E6F746573

# Ordered, append-only. Each runs once, in its own transaction, recorded in schema_version.
MIGRATIONS: list[tuple[int, str]] = [
    (1, """
        CREATE TABLE notes (
            id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            title      VARCHAR(200) NOT NULL,
            body       TEXT NOT NULL DEFAULT '',
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )"""),
    (2, "CREATE INDEX notes_created_at_idx ON notes (created_at DESC)"),
]


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def make_engine(url: str) -> Engine:
    # A short connect timeout keeps /readyz fast when the database is away; pre-ping drops
    # connections the server closed (a database restart) instead of failing a request.
    return create_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True,
                         connect_args={"connect_timeout": 3, "application_name": "notes-api"})


def migrate(engine: Engine) -> list[int]:
    """Apply the migrations not yet applied; returns their versions. Safe to run from many
    processes at once: the advisory lock makes them take turns, and the second finds
    nothing left to do."""
    applied = []
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        conn.execute(text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                          "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"))
        done = set(conn.execute(text("SELECT version FROM schema_version")).scalars())
        for version, sql in MIGRATIONS:
            if version in done:
                continue
            conn.execute(text(sql))
            conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": version})
            applied.append(version)
    return applied


def migrate_with_retry(engine: Engine, wait_s: float, interval_s: float = 2.0) -> list[int]:
    """migrate(), retried while the database is unreachable (it may start after us)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return migrate(engine)
        except Exception as exc:  # OperationalError mostly; the message holds no password
            if time.monotonic() >= deadline:
                raise
            log.warning("migration not applied yet (%s); retrying in %.0f s",
                        str(exc).splitlines()[0][:200], interval_s)
            time.sleep(interval_s)
