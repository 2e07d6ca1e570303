"""The Alembic migrations: one head, matching the models, reversible."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from src import models  # noqa: F401
from src.db import normalize_database_url
from src.migrate import alembic_config, upgrade


def test_single_head():
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1


def test_migrated_schema_matches_models(clean_db):
    engine = create_engine(normalize_database_url(clean_db))
    try:
        with engine.connect() as conn:
            assert {"tasks", "conversations", "messages", "alembic_version"} <= set(inspect(conn).get_table_names())
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_again(clean_db):
    from alembic import command

    command.downgrade(alembic_config(clean_db), "base")
    engine = create_engine(normalize_database_url(clean_db))
    try:
        with engine.connect() as conn:
            assert "tasks" not in inspect(conn).get_table_names()
    finally:
        engine.dispose()
    upgrade(clean_db)
    upgrade(clean_db)  # idempotent at head
