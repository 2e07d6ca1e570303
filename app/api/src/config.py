"""Settings read from the environment once, when the app is created."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
# A small, inexpensive model that supports OpenAI-style tool calling on OpenRouter.
DEFAULT_OPENROUTER_MODEL = "openai/gpt-4o-mini"


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _env_float(name: str, default: float) -> float:
    value = _env(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    openrouter_api_key: str | None = None
    openrouter_base_url: str = DEFAULT_OPENROUTER_BASE_URL
    openrouter_model: str = DEFAULT_OPENROUTER_MODEL
    openrouter_timeout: float = 30.0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database_url=_env("DATABASE_URL"),
            openrouter_api_key=_env("OPENROUTER_API_KEY"),
            openrouter_base_url=_env("OPENROUTER_BASE_URL") or DEFAULT_OPENROUTER_BASE_URL,
            openrouter_model=_env("OPENROUTER_MODEL") or DEFAULT_OPENROUTER_MODEL,
            openrouter_timeout=_env_float("OPENROUTER_TIMEOUT", 30.0),
            log_level=(_env("LOG_LEVEL") or "INFO").upper(),
        )

    def __repr__(self) -> str:  # never show secrets, e.g. in a traceback or a debug log
        return (
            f"Settings(database_url={'set' if self.database_url else 'unset'}, "
            f"openrouter_api_key={'set' if self.openrouter_api_key else 'unset'}, "
            f"openrouter_base_url={self.openrouter_base_url!r}, "
            f"openrouter_model={self.openrouter_model!r})"
        )
