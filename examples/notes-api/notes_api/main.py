"""The HTTP API.

GET  /healthz          liveness: the process serves requests (never touches the database)
GET  /readyz           readiness: migrations applied and the database answers
GET  /notes            the latest 100 notes
POST /notes            {"title": ..., "body": ...} -> 201 with the note
GET  /notes/{id}       the note (ETag signed with the session key), or 404
DELETE /notes/{id}     204, or 404
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from . import __version__
from .db import Note, make_engine, migrate_with_retry
from .settings import get_settings

log = logging.getLogger("notes_api")

# Set on SIGTERM by the server (__main__.py): /readyz answers 503 and responses close
# their connections, while the pod is being taken out of the Service.
DRAINING = threading.Event()


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", max_length=10_000)


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    body: str
    created_at: datetime


class Migrator:
    """Applies the migrations in a background thread, retrying while the database is away.
    /readyz starts it again when the table has vanished (a database that restarted on an
    emptyDir comes back empty), so the pod recovers without a restart."""

    def __init__(self, engine, wait_s: float):
        self.engine = engine
        self.wait_s = wait_s
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self.done.clear()
            self._thread = threading.Thread(target=self._run, name="migrate", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            applied = migrate_with_retry(self.engine, self.wait_s)
            log.info("migrations applied: %s", applied or "none (up to date)")
            self.done.set()
        except Exception as exc:
            log.error("migration gave up after %.0f s: %s", self.wait_s, str(exc).splitlines()[0])


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = make_engine(settings.database_url.get_secret_value())
    # Serve /healthz at once; /readyz stays 503 until the schema is there, so a database
    # that starts after us delays readiness instead of crash-looping the pod.
    app.state.migrator = Migrator(engine, settings.migrate_wait_s)
    app.state.migrator.start()
    yield
    engine.dispose()


app = FastAPI(title="notes-api", version=__version__, lifespan=lifespan)


@app.middleware("http")
async def close_when_draining(request: Request, call_next):
    response = await call_next(request)
    if DRAINING.is_set():
        response.headers["Connection"] = "close"
    return response


def session(request: Request):
    with Session(request.app.state.migrator.engine) as s:
        yield s


DB = Annotated[Session, Depends(session)]


def etag(note: Note) -> str:
    key = get_settings().session_key.get_secret_value().encode()
    digest = hmac.new(key, f"{note.id}:{note.title}:{note.body}".encode(), hashlib.sha256).hexdigest()
    return f'"{digest[:32]}"'


@app.get("/")
def index():
    return {"service": "notes-api", "version": __version__}


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/readyz")
def readyz(request: Request):
    migrator: Migrator = request.app.state.migrator
    if DRAINING.is_set():
        return JSONResponse({"status": "not ready", "reason": "shutting down"}, status_code=503)
    if not migrator.done.is_set():
        migrator.start()  # no-op while it is still trying; again if it gave up
        return JSONResponse({"status": "not ready", "reason": "migrations not applied yet"}, status_code=503)
    try:
        with migrator.engine.connect() as conn:
            conn.execute(text("SELECT 1 FROM notes LIMIT 1"))
    except ProgrammingError as exc:
        if isinstance(exc.orig, psycopg.errors.UndefinedTable):
            migrator.start()
        return JSONResponse({"status": "not ready", "reason": f"database: {_first_line(exc)}"}, status_code=503)
    except Exception as exc:
        return JSONResponse({"status": "not ready", "reason": f"database: {_first_line(exc)}"}, status_code=503)
    return {"status": "ready"}


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]


@app.get("/notes", response_model=list[NoteOut])
def list_notes(db: DB):
    return db.scalars(select(Note).order_by(Note.created_at.desc(), Note.id.desc()).limit(100)).all()


@app.post("/notes", response_model=NoteOut, status_code=status.HTTP_201_CREATED)
def create_note(note: NoteIn, response: Response, db: DB):
    row = Note(title=note.title, body=note.body)
    db.add(row)
    db.commit()
    db.refresh(row)
    response.headers["Location"] = f"/notes/{row.id}"
    return row


@app.get("/notes/{note_id}", response_model=NoteOut)
def get_note(note_id: int, response: Response, db: DB):
    row = db.get(Note, note_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"note {note_id} not found")
    response.headers["ETag"] = etag(row)
    return row


@app.delete("/notes/{note_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_note(note_id: int, db: DB):
    row = db.get(Note, note_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"note {note_id} not found")
    db.delete(row)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
