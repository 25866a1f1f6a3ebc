#!/usr/bin/env bash
# Smoke test of the README's run command, as a user would do it: start the example
# app, then check the dashboard, the /analytics SSE stream and the embedded broker
# with kcat (supplier output, and a record produced with kcat coming out enriched).
set -euo pipefail
cd "$(dirname "$0")/.."
need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' not found. $2" >&2; exit 1; }; }
need kcat "Run: sudo apt-get install -y kcat"
need curl "Run: sudo apt-get install -y curl"

log=$(mktemp)
cargo kfn up >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT

for _ in $(seq 1 240); do
  grep -q "dashboard: http://" "$log" && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "smoke: kfn exited early" >&2; exit 1; }
  sleep 0.5
done
grep -q "dashboard: http://" "$log" || { cat "$log"; echo "smoke: kfn did not come up" >&2; exit 1; }
bootstrap=$(grep -o 'bootstrap: [0-9.:]*' "$log" | head -1 | cut -d' ' -f2)
echo "smoke: up; bootstrap $bootstrap"

curl -fsS http://127.0.0.1:8080/ | grep -q "<title>" && echo "smoke: dashboard page served"
events=$(curl -sN --max-time 12 http://127.0.0.1:8080/analytics | grep '^data:' | head -8 || true)
echo "$events"
[ "$(echo "$events" | grep -c '^data: {')" -ge 3 ] || { echo "smoke: /analytics did not stream JSON objects" >&2; exit 1; }
[ "$(echo "$events" | sort -u | wc -l)" -ge 2 ] || { echo "smoke: /analytics counts did not change" >&2; exit 1; }

supplied=$(kcat -b "$bootstrap" -C -t R2 -c 5 -e -q)
echo "$supplied"
[ "$(echo "$supplied" | grep -c '"duration"')" -eq 5 ] || { echo "smoke: expected 5 PageEvents on R2" >&2; exit 1; }

echo '{"name":"P9","user":"U9","date":"2026-01-01T00:00:00Z","duration":7000}' | kcat -b "$bootstrap" -P -t R2 -k smoke
for _ in $(seq 1 40); do
  if kcat -b "$bootstrap" -C -t R3 -e -q | grep '"name":"P9"' | grep -q '"enriched_by"'; then
    echo "smoke: a record produced with kcat came out enriched on R3"; exit 0
  fi
  sleep 0.5
done
echo "smoke: the kcat record never appeared enriched on R3" >&2; exit 1
