"""Settings from environment variables, then from files in the secrets directory.

In Kubernetes the chart mounts the Secret `notes-api-credentials` at
/etc/notes-api/secrets: one file per key (`database_url`, `session_key`). Anywhere else
(docker run, a laptop) the same names work as environment variables (DATABASE_URL,
SESSION_KEY), which take precedence over the files.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRETS_DIR = os.environ.get("NOTES_API_SECRETS_DIR", "/etc/notes-api/secrets")
DRIVER_SCHEME = "postgresql+psycopg://"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(secrets_dir=SECRETS_DIR, extra="ignore")

    # SecretStr: the URL holds the password, so it never appears in a repr or a log line.
    database_url: SecretStr
    session_key: SecretStr = Field(min_length=16)
    log_level: str = "info"
    # Seconds the start-up migration keeps retrying while the database is not there yet.
    migrate_wait_s: float = 120.0
    # Seconds the server keeps serving after SIGTERM, while the pod leaves the endpoints.
    shutdown_delay_s: float = Field(default=5.0, ge=0, le=20)

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: SecretStr) -> SecretStr:
        # SQLAlchemy would pick psycopg2 (not installed) for postgresql://; say so plainly.
        if not value.get_secret_value().startswith(DRIVER_SCHEME):
            scheme = value.get_secret_value().split("://", 1)[0]
            raise ValueError(f"database_url must start with {DRIVER_SCHEME} (got {scheme}://...)")
        return value


class SettingsError(RuntimeError):
    pass


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # pydantic's own message quotes the input, which holds the other secrets: name the
        # fields and the problems only.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors(include_input=False, include_url=False))
        raise SettingsError(f"invalid settings: {problems} (environment variables, or files in "
                            f"{SECRETS_DIR})") from None
