#!/usr/bin/env bash
# Set everything up and run every check: lint, architecture contracts, the whole test suite
# (SQLite and PostgreSQL; root-only tests run here as root). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check . && ruff format --check . >/dev/null || { ruff format --check .; exit 1; }
echo "== import contracts"; lint-imports
echo "== pytest"
set +e
pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi
exit "$rc"
