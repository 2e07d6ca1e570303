# SEEDED DEFECT (tests/seeded/examples): one stage that keeps the compilers. build-essential
# and libpq-dev are installed "for the C extensions" and never removed, so gcc, make, the
# headers and the apt lists stay in the runtime image: far over notes-api's 250 MB budget.
# Build context: examples/notes-api
FROM python:3.11-slim

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libpq-dev \
 && groupadd --gid 1001 notes \
 && useradd --uid 1001 --gid 1001 --no-create-home --shell /usr/sbin/nologin notes \
 && mkdir -p /etc/notes-api/secrets

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /srv
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY notes_api ./notes_api
RUN python -m compileall -q notes_api

USER 1001:1001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["python", "-m", "notes_api"]

ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="notes-api" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
