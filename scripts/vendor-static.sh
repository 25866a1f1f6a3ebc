#!/bin/sh
# Copy the dashboard's one third-party library (uPlot) from node_modules into
# static/vendor/, so the dashboard works offline and the runtime serves it as-is.
# The version comes from package.json/package-lock.json (pinned exactly); run
# `npm ci` first. Re-run after bumping uplot and commit the result.
set -eu

root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
src="$root/node_modules/uplot"
dst="$root/static/vendor"

if [ ! -f "$src/package.json" ]; then
    echo "vendor-static: $src is missing; run \`npm ci\` in $root first" >&2
    exit 1
fi

version=$(node -p "require('$src/package.json').version")

mkdir -p "$dst"
cp "$src/dist/uPlot.esm.js" "$dst/uPlot.esm.js"
cp "$src/dist/uPlot.min.css" "$dst/uPlot.min.css"
cp "$src/LICENSE" "$dst/uPlot.LICENSE"

cat > "$dst/README.md" <<README
# Vendored third-party code

Copied from npm by \`scripts/vendor-static.sh\` (do not edit by hand).

| package | version | license | files |
|---|---|---|---|
| uplot (uPlot) | $version | MIT (\`uPlot.LICENSE\`) | \`uPlot.esm.js\`, \`uPlot.min.css\` from \`dist/\` |

To update: bump the exact version of \`uplot\` in \`package.json\`, run
\`npm install\`, then \`sh scripts/vendor-static.sh\`.
README

echo "vendor-static: uplot $version -> $dst"
