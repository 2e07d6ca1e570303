# Seeded defect: the app listens on 8080 while the configuration says 8000.
ARG BASE=python:3.13-slim
FROM ${BASE}
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=local
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
WORKDIR /app
COPY server.py /app/server.py
ENV PORT=8080
EXPOSE 8080
USER 1001:1001
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://localhost:%s/health' % os.environ['PORT'], timeout=4)"]
CMD ["python3", "/app/server.py"]
