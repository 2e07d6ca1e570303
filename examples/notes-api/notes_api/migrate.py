"""`python -m notes_api.migrate`: bring the schema up to date, then exit (0 = done).

The container runs the same step at start (in the background, see main.py), so a chart
without a migration Job still gets its table; running both is harmless.
"""

from __future__ import annotations

import logging
import sys

from .db import make_engine, migrate_with_retry
from .settings import SettingsError, get_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        applied = migrate_with_retry(engine, settings.migrate_wait_s)
    except Exception as exc:
        print(f"migration failed: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"migrations applied: {applied or 'none (up to date)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
