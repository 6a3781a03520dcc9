#!/usr/bin/env bash
# Create .venv with Python 3.11+ and install a requirements file, once per content of the pins.
# Usage: scripts/bootstrap-venv.sh requirements.txt|requirements-test.txt
set -euo pipefail
cd "$(dirname "$0")/.."
req=${1:-requirements.txt}

pick_python() {
  for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  py=$(pick_python) || { echo "Hostfleet needs Python 3.11 or newer (python3 --version says $(python3 --version 2>&1))." >&2; exit 1; }
  if ! "$py" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing python3-venv with apt (Debian's python3 ships without it)"
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$py" -m venv .venv
    else
      echo "cannot create a virtualenv: install python3-venv (apt-get install python3-venv) and retry" >&2
      exit 1
    fi
  fi
fi

# Reinstall only when the pinned files change.
stamp=".venv/.installed-$(cat requirements.txt agent/requirements.txt "$req" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing Python packages from $req into .venv (first run: about 60 MB of wheels from PyPI)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
  touch "$stamp"
fi
