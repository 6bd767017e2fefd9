#!/bin/sh
# One command on a fresh Debian 12 machine, as root: installs the packages fnbox needs, builds,
# installs to /usr/local, and starts fnboxd with its zero-config defaults (state in
# /var/lib/fnbox, HTTP on 127.0.0.1:8080, admin token in /var/lib/fnbox/token).
# Environment: FNBOX_LISTEN, FNBOX_STATE_DIR override the defaults; FNBOX_NO_START=1 only installs.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "$(id -u)" -ne 0 ]; then
        echo "install.sh: run as root (fnboxd needs namespaces, cgroups and mounts)" >&2
        exit 1
fi

./tools/setup-deps.sh
if [ ! -d build-release ]; then
        meson setup build-release --prefix=/usr/local --buildtype=release -Dtests=false
fi
ninja -C build-release
meson install -C build-release --quiet

[ "${FNBOX_NO_START:-0}" = 1 ] && exit 0

listen=${FNBOX_LISTEN:-127.0.0.1:8080}
state=${FNBOX_STATE_DIR:-/var/lib/fnbox}
if [ -f /run/fnboxd.pid ] && kill -0 "$(cat /run/fnboxd.pid)" 2>/dev/null; then
        echo "stopping the running fnboxd ($(cat /run/fnboxd.pid))"
        kill "$(cat /run/fnboxd.pid)"
        sleep 1
fi
mkdir -p /var/log
nohup /usr/local/bin/fnboxd --listen "$listen" --state-dir "$state" \
        >>/var/log/fnboxd.log 2>&1 &
echo $! >/run/fnboxd.pid

i=0
until curl -fsS "http://$listen/healthz" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 50 ] || ! kill -0 "$(cat /run/fnboxd.pid)" 2>/dev/null; then
                echo "fnboxd did not start; see /var/log/fnboxd.log:" >&2
                tail -n 20 /var/log/fnboxd.log >&2
                exit 1
        fi
        sleep 0.1
done
echo "fnboxd is running (pid $(cat /run/fnboxd.pid)) on http://$listen"
echo "admin token: $state/token   log: /var/log/fnboxd.log"
echo "try: fnbox list"
