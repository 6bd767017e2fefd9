#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Builds the echo function (echo.so) and packs it for deployment (echo.zip):
#   ./build.sh
#   fnbox deploy echo echo.zip --runtime native --handler echo.so
#   fnbox invoke echo --data hello
# fnbox.h comes from this source tree (agent/), from $FNBOX_INCLUDE, or from the compiler's
# default include path once fnbox is installed. Nothing is linked: the agent provides fnbox_*.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
inc=${FNBOX_INCLUDE:-}
if [ -z "$inc" ] && [ -f "$here/../../agent/fnbox.h" ]; then
        inc="$here/../../agent"
fi

cd "$here"
${CC:-cc} -shared -fPIC -O2 -Wall ${inc:+-I"$inc"} echo.c -o echo.so

rm -f echo.zip
if command -v zip >/dev/null 2>&1; then
        zip -q echo.zip echo.so
else
        /usr/bin/python3 -c 'import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[2])' echo.zip echo.so
fi
echo "built $here/echo.so and $here/echo.zip"
