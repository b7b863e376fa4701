"""Load the packaged time-zone polygons into PostGIS: `tz_world`, its subdivided lookup table, its release.

Tables (schema `public`):
- `tz_world(tzid text primary key, geom geometry(MultiPolygon, 4326))`, GiST on geom: one row per zone.
- `tz_world_lookup(tzid text, geom geometry(Polygon, 4326))`, GiST on geom: `ST_Subdivide(geom, N)`
  pieces of tz_world, which is what the app queries (small pieces: no de-TOASTing per candidate).
- `tz_world_release`: one row saying which data release is loaded and what the load found.

Safety: the whole load is one transaction. New rows go into `*__new` tables, and only at the end are
the old tables dropped and the new ones renamed, so readers see either the old complete data or the
new complete data, and any failure (bad data, lock timeout, lost connection) rolls back to the old
tables untouched. An advisory lock keeps two loaders from racing. Loading the release that is already
there (same data release, same zone set) does nothing unless forced.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import psycopg2
from psycopg2 import sql

from app.timezones.packaged_data import DataRelease, ZoneGeometry, iter_zone_geometries, packaged_release, zone_names

SUBDIVIDE_MAX_VERTICES = 512
_ADVISORY_LOCK_KEY = 0x7A5F_3031  # "tz_world" loader: one at a time per database
_TABLES = ("tz_world", "tz_world_lookup", "tz_world_release")
_INDEXES = {  # index -> table, renamed along with their tables on swap
    "tz_world_pkey": "tz_world",
    "tz_world_geom_idx": "tz_world",
    "tz_world_lookup_geom_idx": "tz_world_lookup",
}
_STAGING = "__new"


class LoadError(RuntimeError):
    """The load failed; the tables that were there before are unchanged."""


@dataclass
class LoadReport:
    data_release: str
    package_version: str
    skipped: bool = False
    zones: int = 0
    polygons: int = 0
    vertices: int = 0
    pieces: int = 0
    repaired: list[str] = field(default_factory=list)
    table_bytes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        if self.skipped:
            return [f"tz_world already holds {self.data_release} (timezonefinder-data {self.package_version}): nothing to do."]
        mib = {name: size / 2**20 for name, size in self.table_bytes.items()}
        return [
            f"Loaded tz_world {self.data_release} (timezonefinder-data {self.package_version}) in {self.seconds:.1f} s",
            f"  zones: {self.zones}  polygons: {self.polygons}  vertices: {self.vertices:,}",
            f"  lookup pieces (ST_Subdivide): {self.pieces:,}",
            f"  invalid geometries repaired with ST_MakeValid: {len(self.repaired)}"
            + (f" ({', '.join(self.repaired)})" if self.repaired else ""),
            "  table sizes: " + ", ".join(f"{name} {size:.1f} MiB" for name, size in mib.items()),
        ]


def _zone_filter(zones: Iterable[str] | None) -> list[str] | None:
    return None if zones is None else sorted(set(zones))


def loaded_release(cursor) -> tuple[str, str, list[str] | None] | None:
    cursor.execute("SELECT to_regclass('public.tz_world_release') IS NOT NULL")
    if not cursor.fetchone()[0]:
        return None
    cursor.execute("SELECT data_release, package_version, zone_filter FROM tz_world_release LIMIT 1")
    row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2])


def load_tz_world(
    dsn: str,
    zones: Iterable[str] | None = None,
    *,
    force: bool = False,
    subdivide_max_vertices: int = SUBDIVIDE_MAX_VERTICES,
    lock_timeout_ms: int = 10_000,
    source: Callable[[list[str] | None], Iterable[ZoneGeometry]] = iter_zone_geometries,
    release: DataRelease | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> LoadReport:
    """Load the packaged boundaries (or `zones` of them) into the database at `dsn`.

    Raises LoadError when anything goes wrong; the previous tables are then still in place.
    `source` and `release` exist so that tests can feed a broken data set.
    """
    started = time.monotonic()
    release = release or packaged_release()
    wanted = _zone_filter(zones)
    if wanted is not None and source is iter_zone_geometries:
        unknown = sorted(set(wanted) - set(zone_names()))
        if unknown:
            raise LoadError(f"unknown time zones: {', '.join(unknown)}")
    try:
        connection = psycopg2.connect(dsn, connect_timeout=10, application_name="easy-geoip load-tz-world")
    except psycopg2.Error as exc:
        raise LoadError(f"cannot connect to PostGIS: {_first_line(exc)}") from None
    try:
        with connection:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK_KEY,))
                _require_postgis(cursor)
                current = loaded_release(cursor)
                if not force and current == (release.release, release.package_version, wanted):
                    return LoadReport(release.release, release.package_version, skipped=True)
                report = LoadReport(release.release, release.package_version)
                _create_staging(cursor)
                progress("copying polygons")
                _copy_zones(cursor, source(wanted), report)
                if report.zones == 0:
                    raise LoadError("the data source yielded no zones")
                progress("validating geometries")
                report.repaired = _repair_invalid(cursor)
                progress("subdividing and indexing")
                _build_lookup(cursor, subdivide_max_vertices, report)
                _write_release(cursor, release, wanted, subdivide_max_vertices, report, started)
                progress("swapping tables")
                _swap(cursor, lock_timeout_ms)
                report.table_bytes = _table_sizes(cursor)
                report.seconds = time.monotonic() - started
                cursor.execute("UPDATE tz_world_release SET load_seconds = %s", (report.seconds,))
        return report
    except LoadError:
        raise
    except (psycopg2.Error, ValueError) as exc:
        raise LoadError(f"tz_world load failed, previous tables kept: {_first_line(exc)}") from exc
    finally:
        connection.close()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _require_postgis(cursor) -> None:
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")
    if cursor.fetchone() is None:
        try:
            cursor.execute("CREATE EXTENSION postgis")
        except psycopg2.Error as exc:
            raise LoadError(f"PostGIS is not installed in this database and cannot be created: {_first_line(exc)}") from None


def _staged(name: str) -> sql.Identifier:
    return sql.Identifier(name + _STAGING)


def _create_staging(cursor) -> None:
    for table in _TABLES:
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_staged(table)))
    cursor.execute(sql.SQL(
        "CREATE TABLE {} (tzid text NOT NULL, geom geometry(MultiPolygon, 4326) NOT NULL)"
    ).format(_staged("tz_world")))


def _copy_zones(cursor, geometries: Iterable[ZoneGeometry], report: LoadReport) -> None:
    copy = sql.SQL("COPY {} (tzid, geom) FROM STDIN").format(_staged("tz_world")).as_string(cursor)
    for zone in geometries:
        # text COPY of hex EWKB: the geometry input function parses it without WKT's float printing
        cursor.copy_expert(copy, io.StringIO(f"{zone.tzid}\t{zone.ewkb.hex()}\n"))
        report.zones += 1
        report.polygons += zone.polygons
        report.vertices += zone.vertices


def _repair_invalid(cursor) -> list[str]:
    cursor.execute(sql.SQL(
        "UPDATE {} SET geom = ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3)) "
        "WHERE NOT ST_IsValid(geom) RETURNING tzid"
    ).format(_staged("tz_world")))
    repaired = sorted(row[0] for row in cursor.fetchall())
    cursor.execute(sql.SQL("SELECT count(*) FROM {} WHERE NOT ST_IsValid(geom) OR ST_IsEmpty(geom)")
                   .format(_staged("tz_world")))
    if cursor.fetchone()[0]:
        raise LoadError("some zone geometries are invalid even after ST_MakeValid")
    return repaired


def _build_lookup(cursor, max_vertices: int, report: LoadReport) -> None:
    world, lookup = _staged("tz_world"), _staged("tz_world_lookup")
    cursor.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (tzid)")
                   .format(world, _staged("tz_world_pkey")))
    cursor.execute(sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(_staged("tz_world_geom_idx"), world))
    # Subdividing is most of the load's time. CREATE TABLE AS (unlike INSERT ... SELECT) may run in
    # parallel workers, which see this transaction's uncommitted staging table; the zone table's heap
    # is tiny (the polygons are TOASTed), so the planner must be told a parallel scan is worth it.
    for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0", "min_parallel_table_scan_size = 0"):
        cursor.execute("SET LOCAL " + setting)
    cursor.execute(sql.SQL("ALTER TABLE {} SET (parallel_workers = 2)").format(world))
    # ST_Subdivide of a valid polygon yields polygons; the type filter only guards degenerate slivers
    cursor.execute(sql.SQL(
        "CREATE TABLE {} AS "
        "SELECT tzid, piece::geometry(Polygon, 4326) AS geom FROM {}, LATERAL ST_Subdivide(geom, %s) AS piece "
        "WHERE GeometryType(piece) = 'POLYGON'"
    ).format(lookup, world), (max_vertices,))
    report.pieces = cursor.rowcount
    cursor.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN tzid SET NOT NULL, ALTER COLUMN geom SET NOT NULL").format(lookup))
    cursor.execute(sql.SQL("ALTER TABLE {} RESET (parallel_workers)").format(world))
    cursor.execute(sql.SQL("CREATE INDEX {} ON {} USING gist (geom)").format(_staged("tz_world_lookup_geom_idx"), lookup))
    cursor.execute(sql.SQL("SELECT coalesce(sum(ST_NPoints(geom)), 0) FROM {}").format(world))
    report.vertices = int(cursor.fetchone()[0])
    cursor.execute(sql.SQL("ANALYZE {}").format(world))
    cursor.execute(sql.SQL("ANALYZE {}").format(lookup))


def _write_release(cursor, release: DataRelease, wanted, max_vertices: int, report: LoadReport, started: float) -> None:
    cursor.execute(sql.SQL(
        "CREATE TABLE {} (data_release text NOT NULL, package_version text NOT NULL, finder_version text NOT NULL,"
        " zone_filter text[], zones integer NOT NULL, polygons integer NOT NULL, vertices bigint NOT NULL,"
        " pieces integer NOT NULL, subdivide_max_vertices integer NOT NULL, repaired text[] NOT NULL,"
        " loaded_at timestamptz NOT NULL DEFAULT now(), load_seconds double precision)"
    ).format(_staged("tz_world_release")))
    cursor.execute(sql.SQL(
        "INSERT INTO {} (data_release, package_version, finder_version, zone_filter, zones, polygons,"
        " vertices, pieces, subdivide_max_vertices, repaired, load_seconds)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    ).format(_staged("tz_world_release")), (
        release.release, release.package_version, release.finder_version, wanted, report.zones,
        report.polygons, report.vertices, report.pieces, max_vertices, report.repaired,
        time.monotonic() - started,
    ))


def _swap(cursor, lock_timeout_ms: int) -> None:
    # Readers keep the roles that could read the old tables (the reader role and the like).
    cursor.execute(
        "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
        "WHERE table_schema = 'public' AND table_name = 'tz_world_lookup' AND privilege_type = 'SELECT' "
        "AND grantee <> current_user"
    )
    readers = [row[0] for row in cursor.fetchall()]
    # Bounded wait for the readers' locks: past it the load fails and the old tables stay.
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout_ms)}ms",))
    for table in _TABLES:
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    for table in _TABLES:
        cursor.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(_staged(table), sql.Identifier(table)))
    for index in _INDEXES:
        cursor.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(_staged(index), sql.Identifier(index)))
    for role in readers:
        cursor.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(
            sql.SQL(", ").join(sql.Identifier(table) for table in _TABLES), sql.Identifier(role)))


def _table_sizes(cursor) -> dict[str, int]:
    sizes = {}
    for table in _TABLES:
        cursor.execute("SELECT pg_total_relation_size(%s::regclass)", (table,))
        sizes[table] = int(cursor.fetchone()[0])
    return sizes


def grant_reader(dsn: str, role: str, password: str) -> None:
    """Create (or update) a LOGIN role that can only SELECT the tz_world tables.

    For the app's TZ_DATABASE_URL: it can read the current tables and, through default privileges
    and the loader copying grants on swap, the tables of every later load; it can write nothing.
    """
    if not password:
        raise ValueError("the reader role needs a non-empty password")
    try:
        _grant_reader(dsn, role, password)
    except psycopg2.Error as exc:
        raise LoadError(f"cannot set up the reader role: {_first_line(exc)}") from None


def _grant_reader(dsn: str, role: str, password: str) -> None:
    connection = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with connection, connection.cursor() as cursor:
            ident = sql.Identifier(role)
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            cursor.execute(sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD %s")
                           .format(ident), (password,))
            cursor.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(connection.info.dbname), ident))
            cursor.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(ident))
            cursor.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(ident))
            for table in _TABLES:
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",))
                if cursor.fetchone()[0]:
                    cursor.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), ident))
    finally:
        connection.close()
