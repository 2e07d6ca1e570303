"""Apply the database migrations: python -m src.migrate  (same as: alembic upgrade head).

Run it once per deployment (a Job or an init step), not from every replica at start-up."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from .db import safe_error
from .logging_setup import setup_logging

API_DIR = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config(str(API_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(API_DIR / "alembic"))
    cfg.attributes["configure_logger"] = False  # the caller has set up logging
    if database_url is not None:
        # Passed to env.py through attributes, not the ini (where '%' would need escaping).
        cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    revision = argv[0] if argv else "head"
    setup_logging()
    try:
        upgrade(revision=revision)
    except Exception as exc:  # noqa: BLE001 - report without a traceback that may quote the URL
        logging.getLogger("src.migrate").error("migration failed: %s", safe_error(exc))
        return 1
    logging.getLogger("src.migrate").info("database is at revision %s", revision)
    return 0


if __name__ == "__main__":
    sys.exit(main())
