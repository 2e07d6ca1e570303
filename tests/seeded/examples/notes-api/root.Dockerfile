# SEEDED DEFECT (tests/seeded/examples): the final stage has no USER, so the app runs as root.
# notes-api: FastAPI + PostgreSQL.
#   docker build -t notes-api:1.0.0 --build-arg VERSION=1.0.0 \
#     --build-arg REVISION=$(git rev-parse HEAD) --build-arg SOURCE=https://example.org/notes .
#   docker run -p 8080:8080 -e DATABASE_URL=postgresql+psycopg://... -e SESSION_KEY=... \
#     --read-only --tmpfs /tmp notes-api:1.0.0

# --- build: a virtualenv with the pinned dependencies -------------------------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

# --- runtime --------------------------------------------------------------------------------
FROM python:3.11-slim

# The chart mounts the credentials Secret in /etc/notes-api/secrets; the empty directory
# keeps pydantic-settings quiet where nothing is mounted.
RUN groupadd --gid 1001 notes \
 && useradd --uid 1001 --gid 1001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin notes \
 && mkdir -p /etc/notes-api/secrets

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY notes_api ./notes_api
# Bytecode compiled now, as root: the running container's root filesystem is read-only.
RUN python -m compileall -q notes_api

EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# uvicorn in this process, PID 1: on SIGTERM it serves 5 s more, then stops (notes_api/__main__.py).
CMD ["python", "-m", "notes_api"]

ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="notes-api" \
      org.opencontainers.image.description="Notes API (FastAPI, PostgreSQL)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
