"""The tz_world loader and `cli.py load-tz-world` against a real PostGIS: idempotence, swap, failure, roles."""
import struct

import psycopg2
import pytest
from click.testing import CliRunner

from app.commands.tz_world import load_tz_world_command
from app.timezones.loader import LoadError, grant_reader, load_tz_world
from app.timezones.packaged_data import DataRelease, ZoneGeometry, iter_zone_geometries, packaged_release
from app.timezones.postgis import PostgisTimezoneIndex
from tests.support.postgres import postgres_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

FEW = ["Europe/London", "Europe/Monaco", "Etc/GMT"]


@pytest.fixture
def database(postgres_server, request):
    name = "loader_" + request.node.name.lower()[:40]
    return postgres_server.create_database(name)


def query(dsn, sql, params=()):
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def release_row(dsn):
    return query(dsn, "SELECT data_release, package_version, zone_filter, zones, loaded_at FROM tz_world_release")


def test_load_builds_valid_indexed_tables_and_records_the_release(database):
    report = load_tz_world(database, FEW)
    assert (report.zones, report.skipped, report.repaired) == (3, False, [])
    assert report.pieces > report.polygons and report.vertices > 10_000
    assert set(report.table_bytes) == {"tz_world", "tz_world_lookup", "tz_world_release"}
    assert query(database, "SELECT tzid, ST_IsValid(geom), GeometryType(geom), ST_SRID(geom) FROM tz_world ORDER BY tzid") == [
        ("Etc/GMT", True, "MULTIPOLYGON", 4326), ("Europe/London", True, "MULTIPOLYGON", 4326),
        ("Europe/Monaco", True, "MULTIPOLYGON", 4326)]
    assert query(database, "SELECT max(ST_NPoints(geom)) <= 512, bool_and(ST_IsValid(geom)) FROM tz_world_lookup") == [(True, True)]
    indexes = {row[0] for row in query(database, "SELECT indexname FROM pg_indexes WHERE tablename LIKE 'tz_world%%'")}
    assert {"tz_world_geom_idx", "tz_world_lookup_geom_idx", "tz_world_pkey"} <= indexes
    release = packaged_release()
    [(data_release, package_version, zone_filter, zones, _)] = release_row(database)
    assert (data_release, package_version, zone_filter, zones) == (release.release, release.package_version, sorted(FEW), 3)
    assert release.release == "2026c"


def test_loading_the_same_release_again_does_nothing(database):
    load_tz_world(database, FEW)
    before = release_row(database)
    oid_before = query(database, "SELECT 'tz_world_lookup'::regclass::oid")
    again = load_tz_world(database, FEW)
    assert again.skipped and release_row(database) == before
    assert query(database, "SELECT 'tz_world_lookup'::regclass::oid") == oid_before


def test_new_release_is_swapped_in_under_a_reader_that_stays_connected(database):
    load_tz_world(database, ["Europe/London", "Etc/GMT"])
    index = PostgisTimezoneIndex(database, retry_after=0.1, statement_timeout_ms=5000)
    assert index.zone_at(51.5074, -0.1278).name == "Europe/London"
    assert index.zone_at(48.8566, 2.3522) is None
    newer = DataRelease("2099z", "9.2099.26", "9.0.0")  # what a future package upgrade would bring
    report = load_tz_world(database, ["Europe/Paris", "Etc/GMT"], release=newer)
    assert not report.skipped
    # same pooled, prepared connection: it now reads the new tables
    assert index.zone_at(48.8566, 2.3522).name == "Europe/Paris"
    assert index.zone_at(51.5074, -0.1278) is None
    assert index.status()["data_release"] == "2099z (timezonefinder-data 9.2099.26)"
    assert query(database, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%%__new'") == [(0,)]
    index.close()


def corrupt_after_first(zones):
    """Real geometries, then bytes no geometry parser accepts: a damaged data package."""
    for number, zone in enumerate(iter_zone_geometries(zones)):
        if number == 1:
            yield ZoneGeometry(zone.tzid, zone.ewkb[:40], zone.polygons, zone.vertices)
            return
        yield zone


def test_a_failed_load_leaves_the_old_tables(database):
    load_tz_world(database, FEW)
    before = (release_row(database), query(database, "SELECT tzid, md5(ST_AsBinary(geom)) FROM tz_world ORDER BY tzid"))
    with pytest.raises(LoadError, match="previous tables kept"):
        load_tz_world(database, ["Europe/Paris", "Europe/Madrid", "Etc/GMT"], force=True, source=corrupt_after_first)
    after = (release_row(database), query(database, "SELECT tzid, md5(ST_AsBinary(geom)) FROM tz_world ORDER BY tzid"))
    assert after == before
    assert query(database, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%%__new'") == [(0,)]


def test_a_swap_that_cannot_get_its_lock_fails_and_keeps_the_old_tables(database):
    load_tz_world(database, FEW)
    before = release_row(database)
    holder = psycopg2.connect(database)
    try:
        with holder.cursor() as cursor:  # a long-running reader transaction
            cursor.execute("SELECT count(*) FROM tz_world_lookup")
        with pytest.raises(LoadError, match="lock timeout"):
            load_tz_world(database, ["Europe/Paris"], force=True, lock_timeout_ms=200)
    finally:
        holder.rollback()
        holder.close()
    assert release_row(database) == before


def test_invalid_geometry_is_repaired_and_reported(database):
    def bowtie(zones):
        ring = [(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)]  # self-intersecting
        ewkb = struct.pack("<BIII", 1, 6 | 0x20000000, 4326, 1) + struct.pack("<BII", 1, 3, 1)
        ewkb += struct.pack("<I", len(ring)) + b"".join(struct.pack("<dd", x, y) for x, y in ring)
        yield ZoneGeometry("Etc/GMT", ewkb, 1, len(ring))

    report = load_tz_world(database, ["Etc/GMT"], source=bowtie)
    assert report.repaired == ["Etc/GMT"]
    assert query(database, "SELECT ST_IsValid(geom), GeometryType(geom) FROM tz_world") == [(True, "MULTIPOLYGON")]


def test_unknown_zones_are_refused_before_touching_the_database(database):
    with pytest.raises(LoadError, match="unknown time zones: Mars/Olympus_Mons"):
        load_tz_world(database, ["Europe/Paris", "Mars/Olympus_Mons"])
    assert query(database, "SELECT to_regclass('tz_world')") == [(None,)]


def test_reader_role_can_select_and_nothing_else_even_after_a_swap(database, postgres_server):
    load_tz_world(database, FEW)
    grant_reader(database, "tz_reader", "reader-secret")
    reader_dsn = postgres_server.dsn(database.rsplit("/", 1)[1], user="tz_reader", password="reader-secret")
    assert PostgisTimezoneIndex(reader_dsn, statement_timeout_ms=5000).zone_at(51.5074, -0.1278).name == "Europe/London"
    for statement in ("DELETE FROM tz_world", "DROP TABLE tz_world_lookup", "CREATE TABLE t (x int)",
                      "INSERT INTO tz_world_release (data_release) VALUES ('x')"):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            query(reader_dsn, statement)
    load_tz_world(database, ["Europe/Paris", "Etc/GMT"], force=True)  # new tables, swapped in
    index = PostgisTimezoneIndex(reader_dsn, statement_timeout_ms=5000)
    assert index.zone_at(48.8566, 2.3522).name == "Europe/Paris"
    assert index.status()["state"] == "ok"
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(postgres_server.dsn("postgres", user="tz_reader", password="wrong"))


def test_cli_loads_reports_and_is_idempotent(database, tmp_path):
    runner = CliRunner()
    result = runner.invoke(load_tz_world_command, ["--dsn", database, "--zones", "Europe/London,Etc/GMT"])
    assert result.exit_code == 0, result.output
    assert "zones: 2" in result.output and "vertices:" in result.output and "MiB" in result.output
    password = tmp_path / "reader.pw"
    password.write_text("pw-from-file\n")
    result = runner.invoke(load_tz_world_command, ["--dsn", database, "--zones", "Europe/London,Etc/GMT",
                                                   "--reader-role", "cli_reader", "--reader-password-file", str(password)])
    assert result.exit_code == 0 and "nothing to do" in result.output and "cli_reader" in result.output
    assert query(database, "SELECT has_table_privilege('cli_reader', 'tz_world_lookup', 'SELECT'), "
                           "has_table_privilege('cli_reader', 'tz_world_lookup', 'INSERT')") == [(True, False)]


def test_cli_errors_are_clear(database, tmp_path):
    runner = CliRunner()
    empty = tmp_path / "empty.pw"
    empty.write_text("")
    result = runner.invoke(load_tz_world_command, ["--dsn", database, "--zones", "Etc/GMT", "--reader-role", "r",
                                                   "--reader-password-file", str(empty)])
    assert result.exit_code == 1 and "non-empty password" in result.output
    result = runner.invoke(load_tz_world_command, ["--dsn", database, "--reader-role", "r"])
    assert result.exit_code == 2 and "go together" in result.output
    result = runner.invoke(load_tz_world_command, ["--dsn", database, "--zones", "Nowhere/Land"])
    assert result.exit_code == 1 and "unknown time zones: Nowhere/Land" in result.output
    result = runner.invoke(load_tz_world_command, ["--dsn", "postgresql://nobody:x@127.0.0.1:1/none"])
    assert result.exit_code == 1 and "cannot connect" in result.output and "Traceback" not in result.output
    result = runner.invoke(load_tz_world_command, [], env={"TZ_DATABASE_URL": ""})
    assert result.exit_code == 2 and "TZ_DATABASE_URL" in result.output


def test_a_reload_reaches_the_lookup_services_zone_cache(database):
    """The service keeps zone answers per tz_world load (`version`, its loaded_at): after a reload
    the cached answer for a point is asked again, without a restart."""
    from app.lookup import ZoneCache
    load_tz_world(database, ["Europe/London", "Etc/GMT"])
    index = PostgisTimezoneIndex(database, retry_after=0.1, statement_timeout_ms=5000)
    zones = ZoneCache(index, 64)
    assert zones.zone_at(48.8566, 2.3522) is None  # Paris is not loaded: "no zone here" is kept too
    version = index.version
    assert version is not None
    load_tz_world(database, ["Europe/Paris", "Etc/GMT"], release=DataRelease("2099z", "9.2099.26", "9.0.0"))
    index._version_due = 0.0  # as if VERSION_CHECK_INTERVAL had passed
    assert index.version != version
    assert zones.zone_at(48.8566, 2.3522).name == "Europe/Paris"
    index.close()
