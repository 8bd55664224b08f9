#!/usr/bin/env bash
# Prepare a fresh Debian machine: Debian packages, a venv at .venv with the project installed.
# Says what it installs and roughly how long it takes; a second run checks and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
started=$SECONDS
say() { echo "setup [$((SECONDS - started))s]: $*"; }

need=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done < scripts/apt-packages.txt
if [ ${#need[@]} -gt 0 ]; then
  say "${#need[@]} Debian package(s) missing: ${need[*]}"
  say "updating the package lists"
  $SUDO apt-get update -qq
  # apt's own figures, before anything is fetched: how many packages (with dependencies), how big.
  total=$(LC_ALL=C $SUDO apt-get install -s --no-install-recommends "${need[@]}" 2>/dev/null | grep -c '^Inst ' || true)
  sizes=$(LC_ALL=C $SUDO apt-get install --assume-no --no-install-recommends "${need[@]}" 2>/dev/null |
    grep -E '^(Need to get|After this operation)' | tr '\n' ' ' || true)
  estimate="about a minute"; [ "$total" -lt 100 ] || estimate="usually 3-8 minutes, mostly downloads"
  say "installing $total Debian package(s) with dependencies: ${sizes}($estimate)"
  # One line per tenth of the packages set up, instead of apt's hundreds of lines.
  done_count=0 shown=0
  while IFS= read -r line; do
    case "$line" in
      "Setting up "*)
        done_count=$((done_count + 1))
        if [ "$total" -gt 0 ] && [ $((done_count * 10 / total)) -gt "$shown" ]; then
          shown=$((done_count * 10 / total))
          say "Debian packages: $done_count of $total set up (${line#Setting up })"
        fi ;;
      E:*) echo "$line" >&2 ;;
    esac
  done < <(DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" 2>&1)
  still=()
  for pkg in "${need[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || still+=("$pkg"); done
  if [ ${#still[@]} -gt 0 ]; then
    echo "setup: could not install: ${still[*]} (see: apt-get install ${still[*]})" >&2
    exit 1
  fi
  say "Debian packages installed"
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  say "installing the project and its Python packages from PyPI into .venv (about 2-4 minutes, ~600 MB)"
  .venv/bin/pip install -q --upgrade pip
  # pip names each package as it fetches it; the rest of its output only if it fails.
  log=$(mktemp)
  count=0
  if ! .venv/bin/pip install --progress-bar off -e '.[dev]' 2>&1 | tee "$log" | while IFS= read -r line; do
    case "$line" in
      "Collecting "*) count=$((count + 1)); say "Python package $count: ${line#Collecting }" ;;
      "Processing "*) count=$((count + 1)); file=${line#Processing }; say "Python package $count: ${file##*/}" ;;
      "Installing collected packages:"*) say "unpacking them into .venv" ;;
    esac
  done; then
    cat "$log" >&2; rm -f "$log"
    echo "setup: pip install failed (output above)" >&2
    exit 1
  fi
  rm -f "$log"
  rm -f .venv/.installed-*; touch "$stamp"
  say "Python packages installed"
fi
