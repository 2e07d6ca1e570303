#!/bin/bash
# Entrypoint of the todo-postgres image.
#
# On an empty data directory it runs initdb and creates POSTGRES_USER (a superuser, with
# POSTGRES_PASSWORD) and POSTGRES_DB, as the official postgres image does; network
# connections then need that password (scram-sha-256). Finally it execs postgres in the
# foreground, so the server is PID 1 and gets the stop signal directly (the image sets
# STOPSIGNAL SIGINT: a fast shutdown).
#
# Environment:
#   POSTGRES_PASSWORD / POSTGRES_PASSWORD_FILE  required for a new cluster
#   POSTGRES_USER (default postgres), POSTGRES_DB (default POSTGRES_USER)
#   POSTGRES_INITDB_ARGS  extra initdb arguments
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for network connections (default scram-sha-256)
#   PGDATA (default /var/lib/postgresql/data). When PGDATA is a mount point this user does
#     not own (an emptyDir, a volume root) or one holding other files (lost+found), the
#     cluster goes in PGDATA/pgdata instead, the same way on every start.
set -Eeuo pipefail

log() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# VAR or VAR_FILE (for Docker and Kubernetes secrets), never both.
file_env() {
  local var=$1 file_var="${1}_FILE"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    die "both $var and $file_var are set; use one"
  fi
  if [ -n "${!file_var:-}" ]; then
    [ -r "${!file_var}" ] || die "$file_var names an unreadable file"
    printf -v "$var" '%s' "$(< "${!file_var}")"
  fi
}

choose_datadir() {
  PGDATA=${PGDATA:-/var/lib/postgresql/data}
  if [ -s "$PGDATA/PG_VERSION" ]; then return; fi
  if [ -s "$PGDATA/pgdata/PG_VERSION" ]; then PGDATA=$PGDATA/pgdata; return; fi
  mkdir -p "$PGDATA" 2>/dev/null || true
  if [ -O "$PGDATA" ] && [ -z "$(ls -A "$PGDATA" 2>/dev/null)" ]; then return; fi
  log "$PGDATA is not an empty directory owned by uid $(id -u): using $PGDATA/pgdata"
  PGDATA=$PGDATA/pgdata
}

socket_dir() {
  if [ -d /var/run/postgresql ] && [ -w /var/run/postgresql ]; then
    echo /var/run/postgresql
  else
    echo /tmp
  fi
}

init_cluster() {
  file_env POSTGRES_PASSWORD
  local user=${POSTGRES_USER:-postgres}
  local db=${POSTGRES_DB:-$user}
  local auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    die "the data directory is empty and POSTGRES_PASSWORD is not set: set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to create the database"
  fi

  log "initialising a new cluster in $PGDATA (user $user, database $db)"
  local extra=()
  read -ra extra <<< "${POSTGRES_INITDB_ARGS:-}"
  local cmd=(initdb -D "$PGDATA" --username="$user" --auth-local=trust --auth-host="$auth"
             --encoding=UTF8 --locale=C.UTF-8 "${extra[@]}")
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    # The password reaches initdb through a pipe, never a file or the command line.
    "${cmd[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") >/dev/null
  else
    "${cmd[@]}" >/dev/null
  fi

  # Any address may connect, always with a password (unless trust was asked for).
  printf 'host all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
  {
    echo
    echo "# added by the todo-postgres entrypoint"
    echo "listen_addresses = '*'"
    echo "jit = off  # the image leaves out LLVM"
  } >> "$PGDATA/postgresql.conf"

  # A temporary server on the socket only, to create the database and run init scripts.
  local sock; sock=$(socket_dir)
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k $sock" -w -t 60 start >/dev/null
  local psql=(psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -U "$user" --no-password)
  if [ "$db" != postgres ]; then
    "${psql[@]}" -d postgres --set db="$db" <<<'CREATE DATABASE :"db";'
  fi
  local f
  # shellcheck disable=SC1090 # init scripts are the user's, found at run time
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)  log "running $f"; . "$f" ;;
      *.sql) log "running $f"; "${psql[@]}" -d "$db" -f "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
  log "cluster ready"
}

if [ "${1:0:1}" = '-' ]; then
  set -- postgres "$@"
fi

if [ "$1" = postgres ]; then
  if [ "$(id -u)" = 0 ]; then
    # Started as root (e.g. --user 0): hand the directories to postgres and drop to it.
    choose_datadir
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
  fi
  choose_datadir
  export PGDATA
  mkdir -p "$PGDATA" || die "cannot create $PGDATA: mount a writable volume there"
  chmod 700 "$PGDATA" 2>/dev/null || true
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    init_cluster
  fi
  unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE
  shift
  exec postgres -D "$PGDATA" -k "$(socket_dir)" "$@"
fi

exec "$@"
