#!/bin/sh
# Builds fnbox and runs fnbox-bench (docs/performance.md) against the fnboxd of that build.
# Samples and the chart go to BUILD_DIR/bench/ unless options say otherwise.
#
# Usage: tools/bench/run.sh [BUILD_DIR] [fnbox-bench OPTIONS...]
#   tools/bench/run.sh                                   # build/, default sizes
#   tools/bench/run.sh build --wait-quiet 300 --svg docs/performance.svg
#   tools/bench/run.sh build --quick                     # a smoke test, ~30 s
#   tools/bench/run.sh build --runtimes native,python3   # some runtimes only (default: all)
# The python3 and nodejs echo functions are tools/bench/functions/*/: fnbox-bench bundles them.
set -eu
cd "$(dirname "$0")/../.."

build=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
        build=$1
        shift
fi
if [ "$(id -u)" -ne 0 ]; then
        echo "run.sh: fnbox-bench starts fnboxd, which needs root" >&2
        exit 1
fi
[ -f "$build/build.ninja" ] || meson setup "$build"
ninja -C "$build"

out="$build/bench"
mkdir -p "$out"
# Later options win: "--svg docs/performance.svg" after these replaces the default.
# The table comes at the end (progress goes to stderr), so it is kept in report.txt too.
status=0
"$build/tools/bench/fnbox-bench" \
        --fnboxd "$build/daemon/fnboxd" --agent "$build/agent/fnbox-agent" \
        --function "$build/tests/functions/echo.so" \
        --slow-function "$build/tests/functions/probe.so" \
        --csv "$out/samples.csv" --json "$out/results.json" --svg "$out/performance.svg" \
        "$@" >"$out/report.txt" || status=$?
cat "$out/report.txt"
exit "$status"
