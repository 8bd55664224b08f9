#!/usr/bin/env bash
# Set everything up and run the service on the embedded default (SQLite under FACTORY_HOME).
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
exec factory serve "$@"
