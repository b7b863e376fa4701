#!/bin/sh
# Healthy when the server accepts connections and answers a real polygon query:
# a point in Paris must be inside the Europe/Paris polygon.
set -eu
socket_dir=/run/postgresql
pg_isready -q -h "$socket_dir" -d tz_world
zone=$(psql -h "$socket_dir" -d tz_world -X -t -A -v ON_ERROR_STOP=1 -c \
  "SELECT tzid FROM tz_world_lookup WHERE ST_Contains(geom, ST_SetSRID(ST_MakePoint(2.3522, 48.8566), 4326)) ORDER BY tzid LIMIT 1")
[ "$zone" = "Europe/Paris" ] || { echo "probe answered '$zone', expected Europe/Paris" >&2; exit 1; }
