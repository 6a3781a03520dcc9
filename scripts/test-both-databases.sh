#!/usr/bin/env bash
# `make test`'s two runs: the whole suite on SQLite, then the tests that use the panel's database again on
# a PostgreSQL cluster the session starts (pytest --db=postgresql selects them). Prints each run's summary
# line, labelled, at the end; fails if either run fails or collects nothing. Extra arguments go to both.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run() {  # run <label> <log> <pytest args...>
  local label=$1 log=$2
  shift 2
  echo "== $label"
  local started=$SECONDS
  "$PY" -m pytest "$@" 2>&1 | tee "$log"
  local code=${PIPESTATUS[0]}
  echo "$code $((SECONDS - started))" > "$log.status"
}

summary() {  # summary <label> <log>: one line: label, pytest's counts, seconds, verdict
  local label=$1 log=$2 code seconds counts verdict
  read -r code seconds < "$log.status"
  counts=$(grep -E '(passed|failed|skipped|errors?|deselected|no tests ran).* in [0-9.]+s' "$log" | tail -1 \
    | sed -E 's/^=+ //; s/ =+$//')
  case $code in
    0) verdict=passed ;;
    5) verdict="FAILED: collected no tests" ;;
    *) verdict="FAILED (pytest exit $code)" ;;
  esac
  printf '%-22s %s (%d s) — %s\n' "$label:" "${counts:-no summary}" "$seconds" "$verdict"
  [ "$code" = 0 ]
}

run "SQLite run: every test" "$logs/sqlite" "$@"
run "PostgreSQL run: the tests that use the panel's database" "$logs/postgresql" \
  -m "not lab and not browser" --db=postgresql "$@"

echo
echo "== make test: both runs"
status=0
summary "SQLite run" "$logs/sqlite" || status=1
summary "PostgreSQL run" "$logs/postgresql" || status=1
exit $status
