from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from ..db import ping, safe_error

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: the process answers. Never touches the database."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "database not reachable"}})
def ready(request: Request):
    """Readiness: the database answers SELECT 1."""
    engine = request.app.state.engine
    if engine is None:
        reason = request.app.state.db_error or "database not configured"
        return JSONResponse(status_code=503, content={"status": "not ready", "reason": reason})
    try:
        ping(engine)
    except SQLAlchemyError as exc:
        log.warning("readiness check failed: %s", safe_error(exc))
        return JSONResponse(status_code=503, content={"status": "not ready", "reason": "database not reachable"})
    return {"status": "ready"}
