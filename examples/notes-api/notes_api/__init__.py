"""notes-api: a small notes service (FastAPI, SQLAlchemy 2, psycopg 3, PostgreSQL)."""

__version__ = "1.0.0"
