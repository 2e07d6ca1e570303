"""Alembic environment: the database URL comes from DATABASE_URL (normalised to psycopg 3
like the app does), or from config.attributes["database_url"] when called from code."""

from __future__ import annotations

import os
import time
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from src import models  # noqa: F401 - registers the tables on SQLModel.metadata
from src.db import is_sqlite, normalize_database_url

config = context.config

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def database_url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise SystemExit("DATABASE_URL is not set: export it (postgresql://USER:PASSWORD@HOST:5432/DB) and retry")
    return normalize_database_url(url)


def run_migrations_offline() -> None:
    url = database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=is_sqlite(url),
    )
    with context.begin_transaction():
        context.run_migrations()


def connect_patiently(engine, wait_s: float = 30.0):
    """The first connection, retried for `wait_s`: the migration runs in a new pod (a hook
    Job), and a NetworkPolicy controller admits a new pod a moment after it starts, as a
    database that is still starting refuses connections for a while."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return engine.connect()
        except OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            print(f"database not reachable yet ({str(exc).splitlines()[0][:120]}); retrying", flush=True)
            time.sleep(1)


def run_migrations_online() -> None:
    url = database_url()
    connectable = engine_from_config(
        {"sqlalchemy.url": url}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with connect_patiently(connectable) as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=is_sqlite(url),
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
