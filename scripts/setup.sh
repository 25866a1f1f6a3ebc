#!/usr/bin/env bash
# Installs what kfn's tests need on a Debian/Ubuntu machine, once: the system packages
# (with apt-get, through sudo unless root), the wasm32-wasip2 Rust target and the
# browser test's npm packages. `scripts/test.sh --setup` and `.ci/run` run it; it
# installs only what is missing and says what it does.
#
#   chromium            the dashboard test (headless)
#   clang lld wasi-libc libclang-rt-dev-wasm32
#                       C functions (clang for wasm32, its linker, libc and runtime)
#   cmake perl make     building librdkafka and its vendored OpenSSL (cargo does it)
#   kcat curl           the smoke test of `cargo kfn up`
#   maven               fetching Apache Kafka's jars for the real-broker tests (once)
#   openjdk-17-jre-headless
#                       running that broker, and keytool for its test CA
# Go 1.25+, Node.js 20+ and Python 3 with venv are named with their install command by
# the builds that need them.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

missing=()
for pair in chromium:chromium clang:clang kcat:kcat curl:curl mvn:maven cmake:cmake \
  perl:perl make:make java:openjdk-17-jre-headless keytool:openjdk-17-jre-headless; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
for pkg in lld wasi-libc libclang-rt-dev-wasm32; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  command -v apt-get >/dev/null 2>&1 || {
    echo "setup: error: apt-get not found; install these packages (Debian names) yourself: ${missing[*]}" >&2
    exit 1
  }
  sudo_=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "setup: error: not root and no sudo; as root run: apt-get install -y ${missing[*]}" >&2
      exit 1
    }
    sudo_=sudo
  fi
  say "installing system packages: ${missing[*]}"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}"
else
  say "system packages: all there"
fi

if command -v rustup >/dev/null 2>&1; then
  rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
  rustup target list --installed | grep -qx wasm32-wasip2 || {
    say "adding the wasm32-wasip2 Rust target"
    rustup target add wasm32-wasip2
  }
fi

if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing the browser test's npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi
say "done"
