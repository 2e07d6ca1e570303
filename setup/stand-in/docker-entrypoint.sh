#!/bin/sh
# Entry point of the node stand-ins, behaving like the official node images': arguments
# that are not a command (an option such as --version, or a script such as server.js) are
# handed to node; a command runs as given.
set -e
if [ "${1#-}" != "${1:-}" ] || [ -z "${1:-}" ] || ! command -v -- "$1" >/dev/null 2>&1; then
  set -- node "$@"
fi
exec "$@"
