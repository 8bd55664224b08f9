#!/usr/bin/env bash
# Run the README's two commands on a fresh Debian 12: a debootstrapped bookworm root holding only what
# a fresh machine has (no project package: scripts/setup.sh must install them), this checkout's
# committed state cloned into it, then, in a systemd-nspawn container that gives root what a real
# machine gives it (all capabilities, loop devices, FUSE, TUN, KVM, namespaces, writable /proc/sys):
#
#     bash scripts/fresh-root-check.sh [--base DIR] [--keep] [--work DIR]   # as root; 45-60 minutes
#
# 1. `bash scripts/serve.sh` (the first run: set-up, then the service on SQLite with a simulated
#    line): /healthz answers, the board answers, a device is erased and certified; then stopped.
# 2. `bash scripts/test.sh` (ruff, import contracts, the whole suite on SQLite and PostgreSQL), on
#    the host's network (the install test fills a venv from PyPI); FACTORY_TEST_PG_THROWAWAY=1 so
#    the tests start their own PostgreSQL, as on a fresh machine, not one the host may run on :5432.
# Output is the record (docs/operations.md, "The README's commands on a fresh Debian 12").
# --base DIR: a debootstrapped bookworm minbase root to copy instead of running debootstrap.
# --keep: leave the root (WORK/root). Needs: debootstrap, systemd-container, curl, git.
# --serve-only: stop after step 1 (about 10-15 minutes): what a change to the set-up (package lists,
#   scripts/setup.sh) must prove on a fresh machine; the suite itself is CI's on a set-up host.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/fresh-root.sh
. "$REPO/scripts/lib/fresh-root.sh"
SERVE_PORT=8000  # `factory serve`'s default: serve.sh is run exactly as the README writes it
fail() { echo "fresh-root-check: FAIL: $*" >&2; exit 1; }
say() { echo "fresh-root-check [$((SECONDS))s, load $(cut -d' ' -f1-3 /proc/loadavg)]: $*"; }
read_root_options "$@"
[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap, systemd-nspawn)"
for tool in debootstrap systemd-nspawn curl git; do
  command -v "$tool" >/dev/null || fail "$tool missing (apt-get install debootstrap systemd-container curl git)"
done
WORK=${WORK:-$(mktemp -d /var/tmp/factory-fresh-root.XXXXXX)}
mkdir -p "$WORK"
ROOT=$WORK/root
CHECKOUT=/root/device-factory
SERVE_PID=""

cleanup() {
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then kill "$SERVE_PID" 2>/dev/null || true; fi
  if [ "$KEEP" = yes ]; then
    echo "fresh-root-check: root kept in $ROOT (enter it: systemd-nspawn -D $ROOT --register=no --keep-unit)"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# ------------------------------------------------------------------ a fresh Debian 12
# What a fresh Debian 12 install has beyond minbase (init, dbus, CA certificates, ps); no python3,
# no git, no compiler: setup.sh installs everything the project uses.
make_fresh_root "$ROOT" "$BASE" "$WORK" systemd systemd-sysv dbus ca-certificates procps
clone_checkout "$REPO" "$ROOT" "$CHECKOUT"

# ------------------------------------------------------------------ a container with root's devices
# The container's /dev is its own: losetup --find only sees the loop nodes bound into it, so the host
# gets nodes loop0-31 first (opening a node makes the kernel create that loop device).
for i in $(seq 0 31); do [ -e "/dev/loop$i" ] || mknod -m 660 "/dev/loop$i" b 7 "$i"; done
DEVICES=(/dev/loop-control /dev/fuse /dev/net/tun /dev/kvm)
DEVICES+=(/dev/loop[0-9]*)
binds=()
for dev in "${DEVICES[@]}"; do [ -e "$dev" ] && binds+=("--bind=$dev"); done
# API VFS writable and no seccomp filter: root on a real machine writes /proc/sys and makes any call.
# /tmp on the root's disk as on Debian 12 (nspawn's default tmpfs filled up: test disks, guests, PostgreSQL).
in_root() {
  SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 SYSTEMD_SECCOMP=0 SYSTEMD_NSPAWN_TMPFS_TMP=0 nice -n 15 systemd-nspawn -q -D "$ROOT" \
    --register=no --keep-unit --as-pid2 --capability=all "${binds[@]}" \
    --kill-signal=SIGTERM --console=pipe --setenv=HOME=/root --setenv=LANG=C.UTF-8 --chdir="$CHECKOUT" "$@"
}

# ------------------------------------------------------------------ 1. bash scripts/serve.sh
if curl -s -o /dev/null "http://127.0.0.1:$SERVE_PORT/"; then
  fail "port $SERVE_PORT is in use on this host (serve.sh runs on the host's network to download)"
fi
say "bash scripts/serve.sh (host network: setup.sh downloads; then the service on :$SERVE_PORT)"
serve_started=$SECONDS
in_root -M factory-fresh-serve bash scripts/serve.sh >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
shown=0 ready=no
while kill -0 "$SERVE_PID" 2>/dev/null; do
  lines=$(wc -l <"$WORK/serve.log")
  [ "$lines" -le "$shown" ] || { sed -n "$((shown + 1)),${lines}p" "$WORK/serve.log" | grep -E '^(setup|serve)' | sed 's/^/    /' || true; shown=$lines; }
  if curl -sf "http://127.0.0.1:$SERVE_PORT/healthz" >"$WORK/healthz.json" 2>/dev/null; then ready=yes; break; fi
  sleep 5
done
[ "$ready" = yes ] || { tail -30 "$WORK/serve.log"; fail "serve.sh stopped before /healthz answered"; }
say "serve.sh: /healthz answers after $((SECONDS - serve_started)) s: $(cat "$WORK/healthz.json")"
grep -E '^setup \[' "$WORK/serve.log" | tail -1 | sed 's/^/    last set-up line: /'
TOKEN=$(cat "$ROOT$CHECKOUT/.factory-home/admin-token")
api() { curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$SERVE_PORT$1"; }
api /api/board >"$WORK/board.json" || fail "GET /api/board"
say "GET /api/board: $(head -c 160 "$WORK/board.json")..."
certified=0
for _ in $(seq 120); do
  certified=$(api /api/certificates | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))')  || certified=0
  [ "$certified" -eq 0 ] || break
  sleep 5
done
[ "$certified" -gt 0 ] || { tail -30 "$WORK/serve.log"; fail "no device certified by the simulated line"; }
say "the simulated line erased and certified $certified device(s) after $((SECONDS - serve_started)) s"
descendants() { local p; for p in $(pgrep -P "$1" || true); do echo "$p"; descendants "$p"; done; }
serve_pid_inside=""
for p in $(descendants "$SERVE_PID"); do
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'bin/factory serve' && { serve_pid_inside=$p; break; }
done
[ -n "$serve_pid_inside" ] || fail "cannot find factory serve's process under systemd-nspawn $SERVE_PID"
kill -INT "$serve_pid_inside"  # Ctrl-C, as at a terminal
rc=0; wait "$SERVE_PID" || rc=$?
SERVE_PID=""
say "serve.sh stopped (SIGINT): exit status $rc; $(grep -c . "$WORK/serve.log") log lines, tracebacks: $(grep -c Traceback "$WORK/serve.log" || true)"
[ "$rc" -eq 0 ] || [ "$rc" -eq 130 ] || { tail -20 "$WORK/serve.log"; fail "serve.sh exit status $rc"; }

if [ "$SERVE_ONLY" = yes ]; then
  say "PASS, serve.sh only (commit $CHECKOUT_COMMIT; --serve-only: test.sh not run)"
  exit 0
fi

# ------------------------------------------------------------------ 2. bash scripts/test.sh
say "bash scripts/test.sh (host network; the tests' own PostgreSQL)"
test_started=$SECONDS
in_root -M factory-fresh-test --setenv=FACTORY_TEST_PG_THROWAWAY=1 bash scripts/test.sh >"$WORK/test.log" 2>&1 &
TEST_PID=$!
while kill -0 "$TEST_PID" 2>/dev/null; do
  sleep 300
  progress=$(grep -oE '\[ *[0-9]+%\]' "$WORK/test.log" | tail -1 || true)
  failed=$(grep -E '\[ *[0-9]+%\]$' "$WORK/test.log" | tr -cd 'FE' | wc -c)
  say "test.sh running $(((SECONDS - test_started) / 60)) min: ${progress:-starting}, $failed failed or in error so far"
done
rc=0; wait "$TEST_PID" || rc=$?
say "test.sh: exit status $rc after $(((SECONDS - test_started) / 60)) min"
grep -E '^== |^(FAILED|ERROR|SKIPPED) ' "$WORK/test.log" | cut -c1-220 | sed 's/^/    /' || true
grep -E '[0-9]+ (passed|failed|errors?)' "$WORK/test.log" | tail -1 | sed 's/^/    /' || true
[ "$rc" -eq 0 ] || fail "bash scripts/test.sh (log: $WORK/test.log)"
say "PASS (commit $CHECKOUT_COMMIT)"
