# PostgreSQL for the pipeline's container stage and an optional in-cluster database.
# Build context: app/postgres
#   DOCKER_BUILDKIT=1 docker build -f dockerfiles/postgres.Dockerfile \
#     -t todo-postgres:v1.0.0 app/postgres
# (debian:trixie-slim is a stand-in of that name where no registry answers: setup/base-images.sh)
# Run (PGDATA must be a writable volume; /var/run/postgresql and /tmp may be tmpfs):
#   docker run -e POSTGRES_USER=todo -e POSTGRES_PASSWORD=... -e POSTGRES_DB=todo \
#     -v pgdata:/var/lib/postgresql/data --tmpfs /var/run/postgresql --tmpfs /tmp todo-postgres:v1.0.0
ARG DEBIAN_IMAGE=debian:trixie-slim

# The tag is part of DEBIAN_IMAGE (debian:trixie-slim by default); older hadolint
# releases cannot see through the variable and report DL3006.
# hadolint ignore=DL3006
FROM ${DEBIAN_IMAGE}

# Debian trixie's PostgreSQL major version.
ARG PG_MAJOR=17

# A fixed numeric user, created before the package so the package reuses it.
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --no-create-home \
      --shell /bin/bash postgres

# dpkg leaves out LLVM (the JIT provider, its 120 MB library and libz3, which only LLVM
# uses; the entrypoint turns JIT off), the server's bitcode, docs and locale sources (the
# cluster uses the built-in C.UTF-8). No main cluster is created at install time: the
# entrypoint creates one in PGDATA on first start.
# Versions are not pinned: the package comes from the base image's Debian release, whose
# security updates a rebuild should pick up.
# hadolint ignore=DL3008
RUN set -eux; \
    printf '%s\n' 'path-exclude=/usr/lib/*/libLLVM*' 'path-exclude=/usr/lib/*/libz3.so*' \
      'path-exclude=/usr/lib/postgresql/*/lib/llvmjit*' \
      'path-exclude=/usr/lib/postgresql/*/lib/bitcode/*' \
      'path-exclude=/usr/share/doc/*' 'path-exclude=/usr/share/man/*' \
      'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/i18n/*' \
      > /etc/dpkg/dpkg.cfg.d/01-todo-postgres; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-common; \
    sed -ri 's/#? *(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}"; \
    apt-get clean; \
    # ssl-cert (a dependency) generates a "snakeoil" private key at install: the same key
    # in every container built from this image. The server does not use it (ssl is off);
    # removing it in this same step keeps it out of every layer.
    rm -f /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log; \
    install -d -o postgres -g postgres -m 755 /docker-entrypoint-initdb.d; \
    # Sticky and world-writable like /tmp: Docker gives a tmpfs mounted on these paths the
    # image directory's mode (but root as owner), so uid 999 can still write there. The
    # entrypoint keeps the cluster itself in a 0700 directory.
    install -d -o postgres -g postgres -m 1777 /var/lib/postgresql/data; \
    install -d -o postgres -g postgres -m 3777 /var/run/postgresql; \
    "/usr/lib/postgresql/${PG_MAJOR}/bin/postgres" --version

# The script is executable in git (mode 755), and COPY keeps the mode.
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:$PATH PGDATA=/var/lib/postgresql/data
VOLUME ["/var/lib/postgresql/data"]
USER 999:999
EXPOSE 5432
# SIGINT is PostgreSQL's fast shutdown: open connections are closed, not waited for.
STOPSIGNAL SIGINT
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]

ARG VERSION=1.0.0
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="todo-postgres" \
      org.opencontainers.image.description="PostgreSQL ${PG_MAJOR} (Debian trixie) for the Todo Chatbot" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
