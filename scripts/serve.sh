#!/usr/bin/env bash
# Set everything up and run the service on the embedded default (SQLite under FACTORY_HOME) with a
# simulated 2x4 bench line, so devices flow through the board at once.
# Options go to `factory serve` and keep the simulated line: `bash scripts/serve.sh --port 8123`.
# `--simulate 3x8` picks another layout; `--no-simulate` runs the API and pages alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export FACTORY_HOME="${FACTORY_HOME:-$PWD/.factory-home}"
# The home holds the database, the signing key and the admin token: owner only.
(umask 077 && mkdir -p "$FACTORY_HOME")
chmod 700 "$FACTORY_HOME"

args=() simulate=yes
for arg in "$@"; do
  case "$arg" in
    --no-simulate) simulate=no ;;
    --simulate | --simulate=*) simulate=given; args+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done
[ "$simulate" = yes ] && args=(--simulate 2x4 ${args[@]+"${args[@]}"})

echo "serve: database schema (factory db upgrade)"
factory db upgrade
[ -f "$FACTORY_HOME/keys/site-signing-key.pem" ] || factory keys init
if [ ! -f "$FACTORY_HOME/admin-token" ]; then
  (umask 077 && factory users add admin --role admin | tail -n 1 >"$FACTORY_HOME/admin-token")
fi
echo "serve: data, database and keys in $FACTORY_HOME (admin API token: $FACTORY_HOME/admin-token)"
echo "serve: starting: factory serve ${args[*]-}"
exec factory serve ${args[@]+"${args[@]}"}
