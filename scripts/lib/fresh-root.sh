# shellcheck shell=bash
# A fresh Debian 12 (bookworm) root for the checks that run the project as a new site would:
# scripts/systemd-check.sh (the units under a real systemd) and scripts/fresh-root-check.sh (the
# README's commands). Sourced; the caller defines say and fail.
#
#     read_root_options "$@"                  # --base DIR, --work DIR, --keep, --serve-only -> BASE, WORK, KEEP, SERVE_ONLY; --help
#     make_fresh_root ROOT BASE WORK PACKAGE...   # BASE: a root made earlier to copy, or "" to debootstrap
#     clone_checkout REPO ROOT DIR                # this checkout's committed state at ROOT/DIR

read_root_options() {
  BASE="" WORK="" KEEP=no SERVE_ONLY=no
  while [ "$#" -gt 0 ]; do
    case "$1" in
      --serve-only) SERVE_ONLY=yes; shift ;;
      --base) BASE=$2; shift 2 ;;
      --work) WORK=$2; shift 2 ;;
      --keep) KEEP=yes; shift ;;
      -h | --help) sed -n '2,/^[^#]/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;  # the header comment
      *) fail "unknown option '$1' (see --help)" ;;
    esac
  done
}

make_fresh_root() {
  local root=$1 base=$2 work=$3
  shift 3
  if [ -n "$base" ]; then
    say "copying the base root $base"
    cp -a "$base" "$root"
  else
    say "debootstrap bookworm (minbase) into $root"
    nice -n 15 debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
      fail "debootstrap (see $work/debootstrap.log)"
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # Behind a TLS-inspecting proxy the host trusts an extra CA (and may point pip at it): so does the root.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  fi
  [ ! -f /etc/pip.conf ] || cp /etc/pip.conf "$root/etc/pip.conf"
  say "$* in the root"
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive sh -c \
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends $* && update-ca-certificates" \
    >"$work/apt.log" 2>&1 || fail "apt-get in the root (see $work/apt.log)"
}

clone_checkout() {
  local repo=$1 root=$2 dir=$3
  git clone -q "$repo" "$root$dir"
  CHECKOUT_COMMIT=$(git -C "$root$dir" log --oneline -1 | cut -c1-72)
  say "checkout: commit $CHECKOUT_COMMIT"
}
