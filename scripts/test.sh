#!/usr/bin/env bash
# The test command: builds what the tests need, then runs every suite.
#   1. the kfn binary;   2. the example functions and the test guests (.wasm);
#   3. cargo tests (unit, config fixtures, wasm host, end to end on the embedded
#      broker, HTTP/SSE, metrics, token, live kfn.yaml, build errors, and bounded
#      fuzzing of kfn.yaml and .wasm loading: KFN_FUZZ_CASES, 256 by default);   4. an installed kfn in a folder of its own
#      (cargo install into a temporary root, then kfn init/new/build/up there);
#   5. the dashboard in headless Chromium.
#
#   scripts/test.sh --setup   first install what is missing (system packages with
#                             apt-get, the wasm32-wasip2 target, npm packages):
#                             scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

case ${1:-} in
  --setup) scripts/setup.sh ;;
  '') ;;
  *) echo "usage: scripts/test.sh [--setup]" >&2; exit 2 ;;
esac

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' not found. $2" >&2; exit 1; }; }

need cargo "Install Rust with rustup: https://rustup.rs"
need node "Install Node.js 20+ (e.g. apt-get install nodejs npm)."
need cmake "librdkafka is built with it. Run: scripts/test.sh --setup (installs every system package the tests need)"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
[ -n "$CHROMIUM" ] || { echo "error: Chromium not found; the dashboard test needs it. Run: scripts/test.sh --setup (or sudo apt-get install -y chromium, or set CHROMIUM=/path/to/chrome)" >&2; exit 1; }
export CHROMIUM

step "building kfn"
cargo build -p kfn
step "building the example functions and the test guests (wasm32-wasip2)"
setup_hint() { echo "test.sh: a build failed; if a toolchain is missing, scripts/test.sh --setup installs the system packages the builds need" >&2; exit 1; }
cargo kfn build || setup_hint
cargo kfn build --dir runtime/tests/guests || setup_hint

step "cargo tests"
cargo test --workspace

step "an installed kfn in a folder of its own (cargo install, then kfn init/new/build/up)"
cargo test -p kfn --test installed -- --ignored --nocapture

step "dashboard in headless Chromium"
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
KFN_BIN="$PWD/target/debug/kfn" node --test tests/browser/
