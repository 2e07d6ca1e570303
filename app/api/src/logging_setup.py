"""Logging to stdout, one line per record."""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_todo_api", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._todo_api = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level if isinstance(logging.getLevelName(level), int) else "INFO")
    # uvicorn sets up its loggers before importing the app and sends its own messages to
    # stderr; move them to stdout so all the app's output is on one stream.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        for h in logging.getLogger(name).handlers:
            if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr:
                h.setStream(sys.stdout)
    # SQL statements can carry user data; keep SQLAlchemy's engine quiet.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
