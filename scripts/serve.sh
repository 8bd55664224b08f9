#!/usr/bin/env bash
# Set everything up and run the service on the embedded default (SQLite under FACTORY_HOME),
# by default with a simulated 2x4 bench line so devices flow through the board at once.
# Any arguments replace that default and go to `factory serve` (e.g. --port 9000, --simulate 3x8).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export FACTORY_HOME="${FACTORY_HOME:-$PWD/.factory-home}"
factory db upgrade
[ -f "$FACTORY_HOME/keys/site-signing-key.pem" ] || factory keys init
if [ ! -f "$FACTORY_HOME/admin-token" ]; then
  factory users add admin --role admin | tail -n 1 > "$FACTORY_HOME/admin-token"
  chmod 600 "$FACTORY_HOME/admin-token"
fi
echo "admin API token: $FACTORY_HOME/admin-token"
[ "$#" -gt 0 ] || set -- --simulate 2x4
exec factory serve "$@"
