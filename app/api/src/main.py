"""The Todo Chatbot API. Served with: uvicorn src.main:app --host 0.0.0.0 --port 8000"""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .config import Settings
from .db import DatabaseURLError, describe_url, make_engine, normalize_database_url, safe_error
from .logging_setup import setup_logging
from .routes import chat, health, tasks

log = logging.getLogger("src.main")

VERSION = os.environ.get("APP_VERSION", "1.0.0")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    setup_logging(settings.log_level)

    engine = None
    db_error: str | None = None
    if settings.database_url is None:
        db_error = "database not configured"
        log.error("DATABASE_URL is not set: /health works, /ready answers 503 and task/chat routes 503 "
                  "until it is set (e.g. postgresql://USER:PASSWORD@HOST:5432/DB)")
    else:
        try:
            engine = make_engine(settings.database_url)
            log.info("database: %s", describe_url(normalize_database_url(settings.database_url)))
        except DatabaseURLError as exc:
            db_error = "database URL invalid"
            log.error("DATABASE_URL rejected: %s", exc)
        except Exception as exc:  # noqa: BLE001 - e.g. a malformed port; the message may quote the URL
            db_error = "database URL invalid"
            log.error("DATABASE_URL could not be used (%s)", type(exc).__name__)
    log.info("chat: %s", f"OpenRouter model {settings.openrouter_model}" if settings.openrouter_api_key
             else "built-in interpreter (OPENROUTER_API_KEY not set)")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if app.state.engine is not None:
            app.state.engine.dispose()

    app = FastAPI(title="Todo Chatbot API", version=VERSION, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.db_error = db_error

    origins = [o.strip() for o in os.environ.get("CORS_ORIGINS", "").split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"]
        )

    @app.exception_handler(OperationalError)
    async def db_unavailable(request: Request, exc: OperationalError):
        log.warning("database unavailable during %s %s: %s", request.method, request.url.path,
                    safe_error(exc))
        return JSONResponse(status_code=503, content={"detail": "database unavailable"})

    @app.exception_handler(SQLAlchemyError)
    async def db_error_handler(request: Request, exc: SQLAlchemyError):
        log.error("database error during %s %s: %s", request.method, request.url.path, safe_error(exc))
        return JSONResponse(status_code=500, content={"detail": "database error"})

    app.include_router(health.router)
    app.include_router(tasks.router)
    app.include_router(chat.router)
    return app


app = create_app()
