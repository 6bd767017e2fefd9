#!/bin/sh
# Builds everything and runs every test: C unit tests (meson test, TAP), the same unit tests
# under ASan+UBSan, the root-only sandbox tests, and the end-to-end tests (pytest against a real
# fnboxd). Ends with one line: "N passed, N failed, N skipped".
# Usage: tools/test.sh            (as root on Debian 12; installs missing packages first)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

./tools/setup-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

status=0
if [ ! -d build ]; then
        meson setup build >/dev/null || status=1
fi
ninja -C build || status=1
if [ ! -d build-asan ]; then
        meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null ||
                status=1
fi
ninja -C build-asan || status=1

if [ "$status" -ne 0 ]; then
        echo "build failed"
        echo "0 passed, 1 failed"
        exit 1
fi

# Unit and sandbox tests on the plain build, and again under the sanitizers.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
meson test -C build --print-errorlogs || status=1
meson test -C build-asan --print-errorlogs || status=1

# End-to-end: a real fnboxd per test module, as root. The daemon is the sanitized one (a leak
# or undefined behaviour makes it exit non-zero, which fails the module); the agent and the
# test functions are never sanitized (they run under the sandbox's seccomp filter).
FNBOXD="$top/build-asan/daemon/fnboxd" \
FNBOX_AGENT="$top/build-asan/agent/fnbox-agent" \
FNBOX_CLI="$top/build-asan/tools/fnbox" \
FNBOX_FUNCTIONS="$top/build-asan/tests/functions" \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider "$top/tests/e2e" \
        --junitxml="$top/build/e2e-junit.xml" || status=1

/usr/bin/python3 "$top/tools/test-summary.py" \
        "$top/build/meson-logs/testlog.json" \
        "$top/build-asan/meson-logs/testlog.json" \
        "$top/build/e2e-junit.xml" || status=1
exit "$status"
