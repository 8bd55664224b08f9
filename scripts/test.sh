#!/usr/bin/env bash
# Set everything up and run every check: lint, architecture contracts, the whole test suite
# (SQLite and PostgreSQL; root-only tests run here as root). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check . && ruff format --check . >/dev/null || { ruff format --check .; exit 1; }
echo "== import contracts"; lint-imports
# Two passes, both on both cores, so the whole suite fits CI's budget on a 2-core machine: first
# the tests not marked slow (the README's fast loop), then the slow ones (QEMU guests, sshd,
# browsers, kill -9 trials). With --dist loadgroup the tests' own scheduler (tests/harness/
# xdist_groups.py; pytest 9.2 defeats xdist's) runs the modules that boot QEMU guests (marked
# harness.qemu_guest.ONE_GUEST_AT_A_TIME) on one worker, one after another, so no two TCG guests
# compete for the two cores.
# pytest exits 5 when a pass selects nothing (extra args such as -k can do that); only both
# passes selecting nothing is an error.
run_pass() {
    local name=$1; shift
    echo "== pytest: $name"
    set +e
    pytest -q -p no:cacheprovider "$@"
    local rc=$?
    set -e
    return "$rc"
}
rc_fast=0; rc_slow=0
run_pass "not slow" -m "not slow" -n 2 --dist loadgroup "$@" || rc_fast=$?
run_pass "slow" -m slow -n 2 --dist loadgroup "$@" || rc_slow=$?
if [ "$rc_fast" -eq 5 ] && [ "$rc_slow" -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi
for rc in "$rc_fast" "$rc_slow"; do
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then exit "$rc"; fi
done
