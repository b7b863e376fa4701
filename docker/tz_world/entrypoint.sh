#!/bin/bash
# tz_world container start, as the postgres user:
#   1. first start only: create the cluster (superuser password from POSTGRES_PASSWORD_FILE or
#      POSTGRES_PASSWORD; random and unknown when neither is given, since only local peer logins
#      are allowed for the superuser anyway), with pg_hba allowing the reader role over the network
#      and nothing else;
#   2. every start: load the packaged polygons with `cli.py load-tz-world` on a private socket
#      (idempotent: the same release loads nothing, a newer image's release is swapped in whole)
#      and (re)create the read-only reader role with its password;
#   3. serve on 5432 in the foreground.
# The private socket keeps the app and the health check away until the data is complete.
set -euo pipefail

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
DATABASE=tz_world
READER_ROLE="${TZ_READER_ROLE:-tz_reader}"

log() { echo "tz_world: $*" >&2; }

# The value of NAME, or of the file named by NAME_FILE (Docker secrets).
secret() {
    local name="$1" file_name="$1_FILE"
    if [ -n "${!file_name:-}" ]; then
        head -n 1 "${!file_name}"
    else
        printf '%s' "${!name:-}"
    fi
}

[[ "$READER_ROLE" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || { log "TZ_READER_ROLE must be a plain lower-case identifier"; exit 2; }
reader_password="$(secret TZ_READER_PASSWORD)"
[ -n "$reader_password" ] || { log "TZ_READER_PASSWORD (or TZ_READER_PASSWORD_FILE) must be set"; exit 2; }

private_dir="$(mktemp -d)"
trap 'rm -rf "$private_dir"' EXIT

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    superuser_password="$(secret POSTGRES_PASSWORD)"
    if [ -z "$superuser_password" ]; then
        log "no POSTGRES_PASSWORD(_FILE): the superuser gets a random password (it can only log in locally)"
        superuser_password="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    fi
    printf '%s\n' "$superuser_password" > "$private_dir/superuser"
    initdb --pgdata="$PGDATA" --username=postgres --pwfile="$private_dir/superuser" \
        --auth-local=peer --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$private_dir/superuser"
    cat > "$PGDATA/pg_hba.conf" <<HBA
# Written by entrypoint.sh. The superuser logs in only through the local socket (peer);
# over the network only the read-only role, only to its database, only with a password.
local   all             postgres                        peer
host    $DATABASE        $READER_ROLE       samenet     scram-sha-256
host    all             all                 all         reject
HBA
    cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
password_encryption = 'scram-sha-256'
log_destination = 'stderr'
log_min_messages = warning
CONF
    log "cluster created in $PGDATA"
fi

pg_ctl --pgdata="$PGDATA" --wait --silent \
    --options="-c listen_addresses='' -c unix_socket_directories='$private_dir'" start
if [ -z "$(psql -h "$private_dir" -d postgres -X -t -A -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" ]; then
    createdb -h "$private_dir" "$DATABASE"
fi
printf '%s\n' "$reader_password" > "$private_dir/reader"
started=$(date +%s)
if ! python /opt/tz_world/cli.py load-tz-world --dsn "host=$private_dir dbname=$DATABASE user=postgres" \
        --reader-role "$READER_ROLE" --reader-password-file "$private_dir/reader"; then
    log "loading the polygons failed"
    pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
    exit 1
fi
rm -f "$private_dir/reader"
log "polygons ready in $(( $(date +%s) - started )) s"
pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
rm -rf "$private_dir"
trap - EXIT

# Every app worker keeps up to TZ_POOL_SIZE connections: a fleet needs replicas x workers x that
# (docs/scaling.md, "Capacity"), more than PostgreSQL's default of 100 in a large one.
max_connections="${TZ_MAX_CONNECTIONS:-100}"
[[ "$max_connections" =~ ^[0-9]{1,5}$ ]] && (( max_connections >= 10 )) \
    || { log "TZ_MAX_CONNECTIONS must be a number of connections, 10 or more"; exit 2; }
exec postgres -D "$PGDATA" -c max_connections="$max_connections"
