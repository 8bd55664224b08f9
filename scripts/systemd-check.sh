#!/usr/bin/env bash
# Run the installed service under a real systemd: a fresh Debian 12 root (debootstrap), booted with
# `systemd-nspawn -b`, the project installed in it by scripts/install.sh exactly as on a site, then
# factory-api and a simulated bench agent (factory-agent@sim-1) started and checked:
#
#     bash scripts/systemd-check.sh [--base DIR] [--keep] [--work DIR]      # as root; ~8 minutes
#
# Checks: both units active (Type=notify: ready reported), /healthz answers, the watchdog pings
# arrive (WatchdogTimestamp moves on), no unit directive rejected in the journal, `systemd-analyze
# verify` clean, `systemd-analyze security` exposure printed, devices erased and certified by the
# agent, the anchor and backup services succeed, `factory ledger verify` passes, the agent stops
# cleanly. Output is the record (docs/operations.md, "The units under a real systemd").
# --base DIR: a debootstrapped bookworm root to copy instead of running debootstrap (saves ~3 min).
# --keep: leave the root (WORK/root) and print how to enter it. Needs: debootstrap, systemd-container.
# The repository's committed state is installed (a `git clone` of this checkout), not the work tree.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/fresh-root.sh
. "$REPO/scripts/lib/fresh-root.sh"
fail() { echo "systemd-check: FAIL: $*" >&2; exit 1; }
say() { echo "systemd-check [$((SECONDS))s]: $*"; }
read_root_options "$@"
[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap, systemd-nspawn)"
for tool in debootstrap systemd-nspawn nsenter; do
  command -v "$tool" >/dev/null || fail "$tool missing (apt-get install debootstrap systemd-container)"
done
WORK=${WORK:-$(mktemp -d /var/tmp/factory-systemd-check.XXXXXX)}
mkdir -p "$WORK"
ROOT=$WORK/root
NSPAWN_PID=""

cleanup() {
  if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    inside systemctl poweroff >/dev/null 2>&1 || kill "$NSPAWN_PID" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 1; done
    kill -9 "$NSPAWN_PID" 2>/dev/null || true
  fi
  if [ "$KEEP" = yes ]; then
    echo "systemd-check: root kept in $ROOT (boot it: systemd-nspawn -b -D $ROOT --register=no --keep-unit)"
  else
    chattr -R -i "$ROOT/var/lib/factory-anchors" 2>/dev/null || true  # kept heads are made immutable
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# ------------------------------------------------------------------ a fresh Debian 12 with systemd
make_fresh_root "$ROOT" "$BASE" "$WORK" systemd systemd-sysv dbus python3-venv git ca-certificates curl procps
clone_checkout "$REPO" "$ROOT" /root/device-factory

# ------------------------------------------------------------------ boot it
# --register=no --keep-unit: no machined or system bus needed on the host (a VM or container whose
# PID 1 is not systemd works too). The host's network is shared: the API gets a free port.
say "booting the root with systemd-nspawn -b"
systemd-nspawn -b -D "$ROOT" --register=no --keep-unit -M factory-check --console=passive \
  >"$WORK/nspawn.log" 2>&1 &
NSPAWN_PID=$!
init_pid() { pgrep -P "$NSPAWN_PID" | head -1; }
inside() {
  nsenter -t "$(init_pid)" -a /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 "$@"
}
for _ in $(seq 60); do [ -n "$(init_pid)" ] && inside systemctl is-system-running >/dev/null 2>&1 && break; sleep 1; done
state=$(inside systemctl is-system-running --wait || true)
say "systemd $(inside systemctl --version | head -1 | cut -d' ' -f2) is up: $state"
[ "$state" = running ] || { inside systemctl --failed --no-pager; fail "system state '$state'"; }

# ------------------------------------------------------------------ install as an operator would
say "bash scripts/install.sh --no-start (inside the booted root)"
inside bash -c 'cd /root/device-factory && bash scripts/install.sh --no-start' >"$WORK/install.log" 2>&1 ||
  { tail -20 "$WORK/install.log"; fail "install.sh"; }
grep '^install:' "$WORK/install.log" | sed 's/^/    /'
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
inside bash -s "$PORT" <<'EOF'
set -e
sed -i "s/^FACTORY_API_PORT=.*/FACTORY_API_PORT=$1/" /etc/factory/factory.env
# A simulated bench: the same unit, hardening included, with --simulate instead of a site file.
mkdir -p /etc/systemd/system/factory-agent@sim-1.service.d
cat >/etc/systemd/system/factory-agent@sim-1.service.d/simulate.conf <<'UNIT'
[Service]
ExecStart=
ExecStart=/opt/factory/bin/factory line run --simulate 1x2 --disk-mib 4 --agent %l-%i $FACTORY_AGENT_OPTIONS
UNIT
systemctl daemon-reload
EOF

# ------------------------------------------------------------------ start and check
say "systemctl enable --now factory-api.service factory-anchor.timer factory-backup.timer"
inside systemctl enable --now factory-api.service factory-anchor.timer factory-backup.timer 2>&1 | sed 's/^/    /' ||
  fail "factory-api did not start: $(inside journalctl -u factory-api --no-pager | tail -5)"
say "systemctl start factory-agent@sim-1 (a simulated 1x2 bench)"
inside systemctl start factory-agent@sim-1.service ||
  fail "factory-agent@sim-1 did not start: $(inside journalctl -u factory-agent@sim-1 --no-pager | tail -5)"
for unit in factory-api factory-agent@sim-1 factory-anchor.timer factory-backup.timer; do
  [ "$(inside systemctl is-active "$unit")" = active ] || fail "$unit is not active"
  say "is-active $unit: active"
done
health=$(inside curl -sf "http://127.0.0.1:$PORT/healthz") || fail "/healthz does not answer"
say "GET /healthz: $health"
first_api=$(inside systemctl show -P WatchdogTimestampMonotonic factory-api)
first_agent=$(inside systemctl show -P WatchdogTimestampMonotonic factory-agent@sim-1)
say "waiting 35 s: the watchdog pings (API every 15 s, agent every 30 s) and the bench at work"
sleep 35
[ "$(inside systemctl show -P WatchdogTimestampMonotonic factory-api)" != "$first_api" ] || fail "no watchdog ping from factory-api"
[ "$(inside systemctl show -P WatchdogTimestampMonotonic factory-agent@sim-1)" != "$first_agent" ] ||
  fail "no watchdog ping from factory-agent@sim-1"
for unit in factory-api factory-agent@sim-1; do
  say "$unit: $(inside systemctl show "$unit" -p Type -p WatchdogUSec -p NRestarts -p User | tr '\n' ' ')"
done
rejected=$(inside journalctl -b --no-pager | grep -iE "unknown (key|lvalue|section)|failed to parse|ignoring" | grep -i factory || true)
[ -z "$rejected" ] || fail "systemd rejected unit lines: $rejected"
say "journal: no factory unit directive rejected"
inside bash -c 'systemd-analyze verify /etc/systemd/system/factory-*.service /etc/systemd/system/factory-*.timer' >"$WORK/verify.log" 2>&1 || { cat "$WORK/verify.log"; fail "verify"; }
[ ! -s "$WORK/verify.log" ] || { cat "$WORK/verify.log"; fail "systemd-analyze verify printed warnings"; }
say "systemd-analyze verify /etc/systemd/system/factory-*.{service,timer}: clean"
for unit in factory-api.service factory-agent@sim-1.service factory-anchor.service factory-backup.service; do
  say "systemd-analyze security $unit: $(inside systemd-analyze security --no-pager "$unit" | tail -1 | sed 's/.*exposure level for [^:]*: //')"
done
inside systemctl start factory-anchor.service factory-backup.service || fail "anchor/backup service failed"
say "factory-anchor.service and factory-backup.service: $(inside systemctl show -P Result factory-anchor.service), $(inside systemctl show -P Result factory-backup.service)"
inside bash -c 'ls /var/lib/factory-anchors /var/backups/factory' | sed 's/^/    /'
work=$(inside setpriv --reuid=factory --regid=factory --init-groups /opt/factory/venv/bin/python -c '
import sqlite3
db = sqlite3.connect("file:/var/lib/factory/factory.db?mode=ro", uri=True)
jobs = db.execute("select status, count(*) from job group by status order by status").fetchall()
certificates = db.execute("select count(*) from certificate").fetchone()[0]
print(f"jobs {dict(jobs)}, certificates {certificates}")')
say "the simulated bench's work: $work"
case "$work" in *"certificates 0") fail "no device was certified" ;; esac
verdict=$(inside factory ledger verify) || fail "factory ledger verify: $verdict"
say "factory ledger verify: $(echo "$verdict" | grep -m1 . | cut -c1-40)"
inside systemctl stop factory-agent@sim-1
say "agent stopped: $(inside systemctl show factory-agent@sim-1 -p Result -p ExecMainStatus | tr '\n' ' ')"
say "PASS"
