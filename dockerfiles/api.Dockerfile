# Todo Chatbot backend (FastAPI). Build context: app/api
#   DOCKER_BUILDKIT=1 docker build -f dockerfiles/api.Dockerfile \
#     [--secret id=ca,src=/etc/ssl/certs/ca-certificates.crt] -t todo-backend:v1.0.0 app/api
# Only python3 and its venv module are used (no apt/apk), so any Python 3.13 base with
# venv works: the official python:3.13-slim, or the stand-in of that name built from Debian
# where no registry answers (setup/base-images.sh).
ARG PYTHON_IMAGE=python:3.13-slim

# The tag is part of PYTHON_IMAGE (python:3.13-slim by default); older hadolint releases
# cannot see through the variable and report DL3006.
# hadolint ignore=DL3006
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
COPY requirements.txt /tmp/requirements.txt
# The CA bundle secret is only for networks that intercept TLS; it is mounted for this
# step alone and never lands in a layer. The pip cache mount keeps wheels across builds.
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=secret,id=ca \
    set -eu; \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/python -m pip install --require-virtualenv -r /tmp/requirements.txt; \
    /opt/venv/bin/python -m pip check; \
    # pip is not needed at run time: dropping it saves ~13 MB and an unused tool.
    rm -rf /opt/venv/bin/pip* /opt/venv/lib/python3*/site-packages/pip* \
           /opt/venv/lib/python3*/site-packages/setuptools* /opt/venv/share; \
    /opt/venv/bin/python -c "import fastapi, uvicorn, sqlmodel, psycopg, alembic, httpx"

# hadolint ignore=DL3006
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PATH=/opt/venv/bin:$PATH
# uvicorn reads UVICORN_* variables: requests still running 8 s after SIGTERM are cut, so
# the container stops inside Docker's and Kubernetes' default grace periods. Idle
# keep-alive connections are kept longer than the frontend's client keeps them (Node's
# fetch: 4 s), so the server never closes one that the client is about to reuse (a POST on
# such a connection fails with "other side closed" and cannot safely be sent again).
ENV UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN=8 UVICORN_TIMEOUT_KEEP_ALIVE=65
WORKDIR /app
COPY --from=deps /opt/venv /opt/venv
COPY --chown=1001:1001 alembic.ini ./
COPY --chown=1001:1001 alembic/ ./alembic/
COPY --chown=1001:1001 src/ ./src/
USER 1001:1001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/health', timeout=4)"]
CMD ["uvicorn", "src.main:app", "--host", "0.0.0.0", "--port", "8000"]

# Labels last: a new version or revision does not invalidate any layer above.
ARG VERSION=1.0.0
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="todo-backend" \
      org.opencontainers.image.description="Todo Chatbot API: FastAPI, SQLModel on PostgreSQL, OpenRouter tool calling" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
