#!/usr/bin/env bash
# Install npm's axe-core (the accessibility engine the browser tests inject) into a cache keyed by its
# version: $AXE_CORE_CACHE/<version>/node_modules/axe-core/axe.min.js. Without npm or the registry, say
# that the accessibility checks will be skipped and go on.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed 's/#.*//' tests/browser/axe-core.version | tr -d ' \t\n')
cache=${AXE_CORE_CACHE:-/var/cache/hostfleet-lab/axe-core}
target="$cache/$version"
[ -f "$target/node_modules/axe-core/axe.min.js" ] && exit 0
if ! command -v npm >/dev/null; then
  echo "npm is not installed: the browser tests' axe-core checks will be skipped" >&2
  exit 0
fi
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  echo "cannot write $cache: the browser tests' axe-core checks will be skipped" >&2
  exit 0
fi
partial=$(mktemp -d "$cache/.install.XXXXXX")
trap 'rm -rf "$partial"' EXIT
if ! npm install --prefix "$partial" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
    "axe-core@$version" >/dev/null 2>"$partial.log"; then
  echo "npm could not install axe-core@$version: the browser tests' axe-core checks will be skipped" >&2
  sed 's/^/  /' "$partial.log" >&2
  rm -f "$partial.log"
  exit 0
fi
rm -f "$partial.log"
rm -rf "$target" && mv "$partial" "$target"
echo "installed axe-core $version in $target"
