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
as_user=""
if [ "$(id -u)" = 0 ]; then
    chown -R nobody:nogroup "$GEOIP_RUN_DIR"
    as_user="setpriv --reuid=nobody --regid=nogroup --clear-groups --"
    # `nobody` must be able to reach the checkout (its venv, docker/, app/): a directory above it
    # without search permission for others (`mktemp -d` makes 0700 ones) would fail much later,
    # deep in supervisord, with a bare "Permission denied". Say which one, and how to fix it.
    if [ -x "$repo/.venv/bin/supervisord" ] && ! $as_user test -x "$repo/.venv/bin/supervisord"; then
        blocked="$repo"
        directory="$repo"
        while [ "$directory" != / ]; do
            $as_user test -x "$directory" || blocked="$directory"
            directory="$(dirname "$directory")"
        done
        echo "make run: started as root, the service runs as nobody, who cannot reach $repo/.venv/bin/supervisord" >&2
        echo "make run: $blocked is not searchable by others: chmod o+x $blocked (or run make run as another user)" >&2
        exit 1
    fi
fi

# Everything supervisord and its programs print goes through a FIFO (supervisord reopens
# /dev/stdout for its programs, which `nobody` may not do on root's terminal or file; a FIFO
# owned by the stack's user is reopenable) to a copier that no signal stops: were it to die first,
# supervisord's next log line would fail (EPIPE) and kill it before it stopped its programs. The
# copier reads until every writer is gone; if our stdout breaks (the terminal closed), it keeps
# draining to /dev/null. Both ends are opened here first (fd 3 read-write, then fd 4 read), so no
# open ever blocks, and the copier sees the end when supervisord and its programs have exited.
console="$GEOIP_RUN_DIR/console"
rm -f "$console"
mkfifo -m 0600 "$console"
[ -z "$as_user" ] || chown nobody:nogroup "$console"
exec 3<>"$console" 4<"$console"
(trap '' INT TERM HUP PIPE; exec 3>&- 4<&-; { cat || true; exec cat > /dev/null; }) <&4 &
copier=$!

# supervisord runs in a session of its own, so the terminal's and the process group's signals
# reach only this script, which turns every way of stopping it (Ctrl-C, SIGTERM to the group or to
# this process, SIGHUP when the terminal closes) into one SIGTERM to supervisord: a clean stop of
# uWSGI and Nginx. (A SIGHUP reaching supervisord itself would make it restart everything instead.)
supervisord=""
stopping=""
stop() {
    stopping=1
    [ -z "$supervisord" ] || kill -TERM "$supervisord" 2>/dev/null || true
}
trap stop INT TERM HUP
echo "Easy GeoIP on http://$GEOIP_LISTEN (City DB: $GEOIP_CITY_DB; Ctrl-C stops)"
# shellcheck disable=SC2086 # $as_user is a command prefix, split on purpose
setsid $as_user supervisord -c "$repo/docker/supervisord.conf" > "$console" 2>&1 3>&- 4<&- &
supervisord=$!
exec 3>&- 4<&-
[ -z "$stopping" ] || stop

status=0
while :; do
    wait "$supervisord" && status=0 || status=$?
    kill -0 "$supervisord" 2>/dev/null || break  # a trapped signal interrupted the wait
done
while kill -0 "$copier" 2>/dev/null; do
    wait "$copier" || true
done
exit "$status"
