#!/bin/sh
# Installs every Debian 12 package fnbox needs to build, test and run.
# Idempotent: safe to run again; it only asks apt for what is missing.
set -eu

PKGS="build-essential pkg-config meson ninja-build \
libmicrohttpd-dev libprotobuf-c-dev protobuf-c-compiler \
libseccomp-dev libcap-dev libnl-3-dev libnl-route-3-dev \
libsqlite3-dev libarchive-dev libjansson-dev libssl-dev \
libcmocka-dev libcurl4-openssl-dev \
python3 python3-pytest python3-requests \
zip unzip curl bash iproute2 util-linux clang-format git \
crun bubblewrap"
# crun and bubblewrap are baselines for tools/bench/fnbox-bench (it skips them when missing);
# libc6-dev (via build-essential) brings the static libc.a its `cc -static` /bin/true needs.

# The nodejs runtime needs a node in /usr/bin (sandboxes see the host's /usr only). Debian's
# own (18) when the machine has none.
if [ ! -x /usr/bin/node ]; then
        PKGS="$PKGS nodejs"
fi

missing=""
for p in $PKGS; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
                missing="$missing $p"
        fi
done

if [ -n "$missing" ]; then
        if [ "$(id -u)" -ne 0 ]; then
                echo "setup-deps: need root to install:$missing" >&2
                exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing
fi
