#!/bin/sh
# Fails if any tracked C source differs from what .clang-format asks for (STYLE.md section 5).
set -eu
cd "$(dirname "$0")/.."
git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror
