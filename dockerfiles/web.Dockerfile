# Todo Chatbot frontend (Next.js standalone). Build context: app/web.
#   DOCKER_BUILDKIT=1 docker build -f dockerfiles/web.Dockerfile \
#     --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -t todo-frontend:dev app/web
# NODE_IMAGE is used by the build stages, RUNTIME_IMAGE by the final one (default: the same).
# No apk/apt/adduser anywhere, so any Node 20 image works (the official alpine, or the
# Debian-built stand-in of that name where no registry answers: setup/base-images.sh).
ARG NODE_IMAGE=node:20-alpine
ARG RUNTIME_IMAGE=${NODE_IMAGE}

# ---- deps: node_modules from the lockfile only ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NEXT_TELEMETRY_DISABLED=1
COPY package.json package-lock.json .npmrc ./
# The optional "ca" secret (a CA bundle for an intercepting proxy) is read from the
# secret mount for this one command only: never copied into a layer nor set as ENV.
RUN --mount=type=cache,target=/root/.npm \
    --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi; \
    npm ci --no-audit --no-fund --prefer-offline

# ---- builder: next build -> .next/standalone + .next/static ----
FROM ${NODE_IMAGE} AS builder
WORKDIR /app
ENV NEXT_TELEMETRY_DISABLED=1 NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY . .
# No source maps ship; the cache dir exists so a tmpfs/emptyDir can be mounted on it.
RUN npm run build \
    && find .next/standalone .next/static -name '*.map' -delete \
    && mkdir -p .next/standalone/.next/cache public

# ---- runner: only the standalone server on the slim runtime image ----
FROM ${RUNTIME_IMAGE} AS runner
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://example.invalid/todo-chatbot
LABEL org.opencontainers.image.title="todo-frontend" \
      org.opencontainers.image.description="Todo Chatbot frontend: Next.js UI and /api proxy to the backend" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
WORKDIR /app
ENV NODE_ENV=production PORT=3000 HOSTNAME=0.0.0.0 NEXT_TELEMETRY_DISABLED=1
COPY --from=builder --chown=1001:1001 /app/.next/standalone ./
COPY --from=builder --chown=1001:1001 /app/.next/static ./.next/static
COPY --from=builder --chown=1001:1001 /app/public ./public
USER 1001:1001
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD ["node", "-e", "require('http').get('http://localhost:' + (process.env.PORT || 3000) + '/api/health', {timeout: 4000}, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).on('timeout', () => process.exit(1))"]
CMD ["node", "server.js"]
