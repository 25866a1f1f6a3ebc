#!/usr/bin/env bash
# The test command: builds what the tests need, then runs every suite.
#   1. the kfn binary;   2. the example functions and the test guests (.wasm);
#   3. cargo tests (unit, config fixtures, wasm host, end to end on the embedded
#      broker, HTTP/SSE);   4. the dashboard in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' not found. $2" >&2; exit 1; }; }

need cargo "Install Rust with rustup: https://rustup.rs"
need node "Install Node.js 20+ (e.g. apt-get install nodejs npm)."
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
[ -n "$CHROMIUM" ] || { echo "error: Chromium not found; the dashboard test needs it. Run: sudo apt-get install -y chromium (or set CHROMIUM=/path/to/chrome)" >&2; exit 1; }
export CHROMIUM

step "building kfn"
cargo build -p kfn
step "building the example functions and the test guests (wasm32-wasip2)"
cargo kfn build
cargo kfn build --dir runtime/tests/guests

step "cargo tests"
cargo test --workspace

step "dashboard in headless Chromium"
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
KFN_BIN="$PWD/target/debug/kfn" node --test tests/browser/
