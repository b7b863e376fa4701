#!/bin/sh
# `make run`: the container's serving stack (supervisord -> uWSGI + Nginx, the same docker/ files)
# natively on http://127.0.0.1:8080, no Docker. Never as root: when started by root, everything
# runs as `nobody` (only the run directory is handed to it; code and data stay read-only).
# Override GEOIP_LISTEN, GEOIP_RUN_DIR or GEOIP_CITY_DB in the environment if needed.
set -eu
repo="$(cd "$(dirname "$0")/.." && pwd)"
GEOIP_RUN_DIR="${GEOIP_RUN_DIR:-$repo/run}"
GEOIP_LISTEN="${GEOIP_LISTEN:-127.0.0.1:8080}"
GEOIP_CITY_DB="$(realpath -m "${GEOIP_CITY_DB:-$repo/data/city.mmdb}")"
PATH="$repo/.venv/bin:$PATH:/usr/sbin"
HOME="$GEOIP_RUN_DIR"
PYTHONDONTWRITEBYTECODE=1
export GEOIP_RUN_DIR GEOIP_LISTEN GEOIP_CITY_DB PATH HOME PYTHONDONTWRITEBYTECODE

mkdir -p "$GEOIP_RUN_DIR"
chmod 0700 "$GEOIP_RUN_DIR"
echo "Easy GeoIP on http://$GEOIP_LISTEN (City DB: $GEOIP_CITY_DB; Ctrl-C stops)"
if [ "$(id -u)" = 0 ]; then
    chown -R nobody:nogroup "$GEOIP_RUN_DIR"
    # supervisord reopens /dev/stdout for its programs' logs, which `nobody` may not do on root's
    # terminal or file; a FIFO owned by nobody, copied to our stdout by cat, is reopenable.
    console="$GEOIP_RUN_DIR/console"
    rm -f "$console"
    mkfifo -m 0600 "$console"
    chown nobody:nogroup "$console"
    cat "$console" &
    exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
        supervisord -c "$repo/docker/supervisord.conf" > "$console" 2>&1
fi
exec supervisord -c "$repo/docker/supervisord.conf"
