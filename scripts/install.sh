#!/usr/bin/env bash
# Install Device Factory as a system service (Debian 12, as root):
#
#     bash scripts/install.sh [--root DIR] [--no-venv] [--no-start]
#
# Lays out, under DIR (default /):
#   /opt/factory/app          this checkout's tracked files (root-owned, read-only to the service)
#   /opt/factory/venv         its Python environment (the project installed from /opt/factory/app)
#   /opt/factory/bin/factory  the command the units run (and /usr/local/bin/factory for administrators)
#   /etc/systemd/system/      factory-api.service, factory-agent@.service, factory-{anchor,backup}.{service,timer}
#   /etc/factory/factory.env  the settings every unit reads (kept if present; a .dist copy beside it)
#   /etc/factory/benches/     one site file per bench agent (factory-agent@BENCH reads BENCH.toml)
#   /var/lib/factory          FACTORY_HOME: database, keys, work areas (0700, user factory)
#   /var/backups/factory, /var/lib/factory-anchors, the udev rule for NVMe controllers, the user `factory`
# and, on a live system (no --root), installs the Debian packages the service runs, initialises the
# database and the site key, and enables the API and the two timers.
# --root DIR lays everything into DIR and starts nothing (an image, or the install test).
# --no-venv leaves /opt/factory/venv to the caller. --no-start enables nothing.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/opt/factory
ROOT="" VENV=yes START=yes
RUNTIME_PACKAGES=(python3-venv nvme-cli hdparm util-linux e2fsprogs zstd openssh-client postgresql-client)

fail() { echo "install: $*" >&2; exit 1; }
say() { echo "install: $*"; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --root) [ "$#" -ge 2 ] || fail "--root needs a folder"; ROOT=$(realpath -m -- "$2"); shift 2 ;;
    --root=*) ROOT=$(realpath -m -- "${1#--root=}"); shift ;;
    --no-venv) VENV=no; shift ;;
    --no-start) START=no; shift ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown option '$1' (see --help)" ;;
  esac
done
[ "$ROOT" = / ] && ROOT=""
[ "$(id -u)" -eq 0 ] || fail "run as root (it creates a system user and system folders)"
[ -d "$REPO/deploy/systemd" ] || fail "no deploy/systemd in $REPO"
R=$ROOT

if [ -z "$R" ]; then
  missing=()
  for pkg in "${RUNTIME_PACKAGES[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]} (a minute or two)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

say "user factory (systemd-sysusers)"
install -D -m 0644 "$REPO/deploy/sysusers.d/factory.conf" "$R/usr/lib/sysusers.d/factory.conf"
mkdir -p "$R/etc"
systemd-sysusers ${R:+--root="$R"} "$R/usr/lib/sysusers.d/factory.conf"
gid=$(awk -F: '$1 == "factory" { print $3 }' "$R/etc/group")
[ -n "$gid" ] || fail "group factory missing from $R/etc/group"

say "folders (systemd-tmpfiles)"
install -D -m 0644 "$REPO/deploy/tmpfiles.d/factory.conf" "$R/usr/lib/tmpfiles.d/factory.conf"
systemd-tmpfiles --create ${R:+--root="$R"} "$R/usr/lib/tmpfiles.d/factory.conf"

say "application in $PREFIX/app"
rm -rf "$R$PREFIX/app"
install -d -m 0755 "$R$PREFIX" "$R$PREFIX/app" "$R$PREFIX/bin"
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$REPO" ls-files -z --cached --others --exclude-standard |
    tar -C "$REPO" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$R$PREFIX/app" --no-same-owner -xf -
else
  tar -C "$REPO" --exclude=.venv --exclude=.git --exclude=.factory-home -cf - . | tar -C "$R$PREFIX/app" --no-same-owner -xf -
fi
chmod -R u=rwX,go=rX "$R$PREFIX/app"
install -m 0755 "$REPO"/deploy/bin/factory* "$R$PREFIX/bin/"
install -d -m 0755 "$R/usr/local/bin"
ln -sfn "$PREFIX/bin/factory" "$R/usr/local/bin/factory"

if [ "$VENV" = yes ]; then
  say "Python environment in $PREFIX/venv (downloads from PyPI: a few minutes on a first install)"
  # Debian's Python (python3-venv), readable by the service user, not whichever python3 is first on PATH.
  [ -x "$R$PREFIX/venv/bin/python" ] || /usr/bin/python3 -m venv "$R$PREFIX/venv"
  "$R$PREFIX/venv/bin/pip" install -q --upgrade pip
  # Editable, so the Ansible content (playbooks/) is found beside the code, as in a checkout.
  "$R$PREFIX/venv/bin/pip" install -q -e "$R$PREFIX/app"
fi

say "units in /etc/systemd/system, udev rule, configuration in /etc/factory"
install -d -m 0755 "$R/etc/systemd/system" "$R/etc/udev/rules.d"
install -m 0644 "$REPO"/deploy/systemd/factory-* "$R/etc/systemd/system/"
install -m 0644 "$REPO/deploy/udev/60-factory-nvme.rules" "$R/etc/udev/rules.d/"
install -d -m 0750 -o 0 -g "$gid" "$R/etc/factory" "$R/etc/factory/benches"
install -m 0640 -o 0 -g "$gid" "$REPO/deploy/factory.env" "$R/etc/factory/factory.env.dist"
if [ -e "$R/etc/factory/factory.env" ]; then
  say "kept /etc/factory/factory.env (compare with factory.env.dist beside it)"
else
  install -m 0640 -o 0 -g "$gid" "$REPO/deploy/factory.env" "$R/etc/factory/factory.env"
fi

if [ -n "$R" ]; then
  say "laid out under $R; nothing started"
  exit 0
fi
[ "$VENV" = yes ] || [ -x "$PREFIX/venv/bin/factory" ] || fail "$PREFIX/venv/bin/factory missing (--no-venv)"
say "database schema and site signing key (as user factory)"
"$PREFIX/bin/factory" db upgrade
"$PREFIX/bin/factory" keys public >/dev/null 2>&1 || "$PREFIX/bin/factory" keys init
if [ -d /run/systemd/system ]; then
  udevadm control --reload 2>/dev/null && udevadm trigger --subsystem-match=nvme 2>/dev/null || true
  systemctl daemon-reload
  if [ "$START" = yes ]; then
    systemctl enable --now factory-api.service factory-anchor.timer factory-backup.timer
  fi
else
  say "systemd is not running here: enable the units where it is"
fi
cat <<EOF
install: done. Next:
  factory users add NAME --role admin                 # an administrator's API token (shown once)
  edit /etc/factory/factory.env                       # database, site name, listen address
  /etc/factory/benches/BENCH.toml + systemctl enable --now factory-agent@BENCH   # one per bench
  journalctl -u factory-api -f                        # the API's log
EOF
