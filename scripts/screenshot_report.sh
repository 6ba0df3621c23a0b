#!/usr/bin/env bash
# Render a run's report.html in headless Chromium and save a PNG screenshot, to look at
# the page as a browser draws it (the test suite does the same in
# tests/test_report.py::test_report_renders_in_headless_chromium).
#
#   scripts/screenshot_report.sh runs/mnist [shot.png] [height]
#
# Writes DIR/report.html first when it is missing (twinnet report DIR). Needs chromium
# (Debian: apt-get install chromium). No network: the page is self-contained and every
# background service of the browser is switched off.
set -euo pipefail
run_dir=${1:?usage: $0 RUN_DIR [OUT.png] [HEIGHT]}
out=${2:-$run_dir/report.png}
height=${3:-3000}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "screenshot_report: chromium not found (apt-get install chromium)" >&2
    exit 2
fi
if [ ! -f "$run_dir/report.html" ]; then
    python -m twinnet.cli.main report "$run_dir"
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
HOME=$profile "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --screenshot="$(realpath -m "$out")" --window-size="1200,$height" \
    "file://$(realpath "$run_dir/report.html")" 2>/dev/null
echo "wrote $out"
