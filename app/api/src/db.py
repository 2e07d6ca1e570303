"""Database URL handling and engine creation (SQLAlchemy 2 + psycopg 3)."""

from __future__ import annotations

import logging

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

log = logging.getLogger(__name__)

_POSTGRES_SCHEMES = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
    "postgresql+psycopg3": "postgresql+psycopg",
}


class DatabaseURLError(ValueError):
    """The URL is not one this app can use. The message never contains the URL."""


def normalize_database_url(url: str) -> str:
    """Return the URL with its scheme rewritten to use psycopg 3.

    Only the scheme is touched: credentials, host and query arguments such as
    ``?sslmode=require`` (Neon) are kept byte for byte. SQLite URLs pass through for
    local development.
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise DatabaseURLError("DATABASE_URL is not a URL (expected postgresql://...)")
    key = scheme.lower()
    if key in _POSTGRES_SCHEMES:
        return f"{_POSTGRES_SCHEMES[key]}://{rest}"
    if key == "sqlite" or key.startswith("sqlite+"):
        return url
    raise DatabaseURLError(
        f"unsupported DATABASE_URL scheme {scheme!r}: use postgresql:// (or sqlite:// for local development)"
    )


def describe_url(url: str) -> str:
    """A loggable description of a database URL: the password is masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL must not leak through an error message
        return "<unparseable database URL>"


def safe_error(exc: BaseException) -> str:
    """A one-line description of a database error for logs, without secrets.

    libpq and psycopg never put the password in their messages; SQLAlchemy's URL parser
    does quote the whole URL, so for it only the error's class is given."""
    from sqlalchemy.exc import ArgumentError, DBAPIError

    if isinstance(exc, ArgumentError) or isinstance(exc, ValueError) and not isinstance(exc, DatabaseURLError):
        return type(exc).__name__
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    return f"{type(exc).__name__}: {first}"[:300]


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(database_url: str) -> Engine:
    url = normalize_database_url(database_url)
    if is_sqlite(url):
        log.warning("using SQLite (%s): for local development only", describe_url(url))
        return create_engine(url, connect_args={"check_same_thread": False})
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_recycle=300,  # serverless PostgreSQL (Neon) closes idle connections
        # Both under the readiness probe's 5 s timeout, so /ready answers 503 when the database
        # is gone rather than outliving the probe: connect_timeout for a Service without
        # endpoints, tcp_user_timeout (ms) for a pooled connection whose peer vanished.
        connect_args={"connect_timeout": 3, "tcp_user_timeout": 3000},
    )


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
