#!/usr/bin/env bash
# As root, apt-install the Debian packages the tests use (listed in */apt-packages.txt) that are
# missing, without starting their daemons on this machine. Not root: say what will be skipped.
# Then npm's axe-core for the browser tests (scripts/install-axe-core.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t wanted < <(cat tests/apt-packages.txt agent/tests/apt-packages.txt tests/lab/apt-packages.txt 2>/dev/null \
  | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then scripts/install-axe-core.sh; exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "not root: tests that need these Debian packages will be skipped: ${missing[*]}" >&2
  scripts/install-axe-core.sh
  exit 0
fi
echo "installing Debian packages for the tests: ${missing[*]}"
# Debian's maintainer scripts start services on install; policy-rc.d 101 keeps them stopped.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
fi
trap '[ $created_policy = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
scripts/install-axe-core.sh
