# SEEDED DEFECT (tests/seeded/examples): PORT=3000 while shipcheck.yaml and the chart say 5000.
# The HEALTHCHECK still passes (healthcheck.js follows PORT): only the port gates see it.
# notes-web: a small Express service on port 5000.
#   docker build -t notes-web:1.0.0 --build-arg VERSION=1.0.0 \
#     --build-arg REVISION=$(git rev-parse HEAD) --build-arg SOURCE=https://example.org/notes .
#   docker run -p 5000:5000 -e GREETING=Hi --read-only --tmpfs /tmp notes-web:1.0.0

# --- dependencies, exactly as locked --------------------------------------------------------
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime --------------------------------------------------------------------------------
FROM node:20-slim
ENV NODE_ENV=production PORT=3000
WORKDIR /app
# Owned by root and read-only to the app's user.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json server.js healthcheck.js ./
COPY src ./src

USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["node", "healthcheck.js", "/status"]
# node is PID 1 and handles SIGTERM itself (server.js).
CMD ["node", "server.js"]

ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="notes-web" \
      org.opencontainers.image.description="notes-web: greeting and echo API (Express)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
