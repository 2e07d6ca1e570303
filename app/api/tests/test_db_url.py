"""DATABASE_URL normalisation (no database needed)."""

from __future__ import annotations

import pytest

from src.config import Settings
from src.db import DatabaseURLError, describe_url, normalize_database_url, safe_error


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("postgresql+psycopg://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("postgresql+psycopg2://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("POSTGRESQL://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        (
            "postgresql://u:p%40ss@ep-x.eu-central-1.aws.neon.tech/neondb?sslmode=require&channel_binding=require",
            "postgresql+psycopg://u:p%40ss@ep-x.eu-central-1.aws.neon.tech/neondb?sslmode=require&channel_binding=require",
        ),
        ("  postgres://u@h/d\n", "postgresql+psycopg://u@h/d"),
        ("sqlite:///./dev.db", "sqlite:///./dev.db"),
    ],
)
def test_normalize(given, expected):
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize("bad", ["mysql://root:pw@h/d", "not a url", "http://h/d"])
def test_rejects_other_schemes_without_echoing_the_url(bad):
    with pytest.raises(DatabaseURLError) as info:
        normalize_database_url(bad)
    assert bad not in str(info.value)


def test_describe_masks_password():
    assert describe_url("postgresql+psycopg://u:secret@h:5432/d?sslmode=require") == (
        "postgresql+psycopg://u:***@h:5432/d?sslmode=require"
    )


def test_safe_error_hides_unparseable_urls():
    from sqlalchemy.engine import make_url

    try:
        make_url("postgresql://u:secret@h:notaport/d").port
    except Exception as exc:  # noqa: BLE001
        assert "secret" not in safe_error(exc)


def test_settings_repr_hides_secrets(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@h/d")
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-secret")
    settings = Settings.from_env()
    assert "secret" not in repr(settings)
    assert settings.openrouter_model
    assert settings.openrouter_base_url == "https://openrouter.ai/api/v1"
