#!/usr/bin/env bash
# Make sure the host can run the API's database tests, then run them.
#
#   scripts/test-postgres.sh install   install Debian's PostgreSQL server binaries if
#                                      /usr/lib/postgresql/*/bin/initdb is missing (root; apt)
#   scripts/test-postgres.sh [run]     install as above, then pip install the requirements
#                                      and run pytest (extra arguments go to pytest)
#
# The tests start their own throwaway server from those binaries (as the 'postgres' user
# when run as root) unless TEST_DATABASE_URL names a database to use instead. No cluster
# is created or started by the package install itself.
set -euo pipefail
cd "$(dirname "$0")/.."

have_initdb() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

install_postgres() {
  have_initdb && return 0
  [ "$(id -u)" = 0 ] || { echo "PostgreSQL binaries missing: run as root, or apt-get install postgresql" >&2; exit 1; }
  echo "installing Debian's postgresql package (no main cluster)" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
  sed -ri 's/#? *(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  have_initdb
}

case "${1:-run}" in
  install) install_postgres ;;
  run)
    [ $# -gt 0 ] && shift
    [ -n "${TEST_DATABASE_URL:-}" ] || install_postgres
    python -m pip install -q -r requirements.txt -r requirements-dev.txt
    exec python -m pytest -q "$@"
    ;;
  *) echo "usage: $0 [install|run [pytest args]]" >&2; exit 2 ;;
esac
