"""The PostGIS index against a real PostgreSQL + PostGIS with our own small tz_world load."""
import threading
import time

import psycopg2
import pytest

from app.config import Config
from app.errors import TimezoneBackendUnavailable
from app.timezones import open_timezone_index
from app.timezones.base import ZoneMatch
from app.timezones.embedded import EmbeddedTimezoneIndex
from app.timezones.overlap import precedence
from app.timezones.postgis import PostgisTimezoneIndex
from tests.support.postgres import postgres_server, tz_world_dsn, tz_world_outage  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

# Points well inside zones that the small test load holds (tests/support/postgres.py TEST_ZONES).
POINTS = [
    (51.5074, -0.1278), (48.8566, 2.3522), (40.4168, -3.7038), (43.7384, 7.4246), (43.7102, 7.2620),
    (54.7104, 20.4522), (31.2304, 121.4737), (43.8256, 87.6168), (35.6762, 139.6503),
    (34.0522, -118.2437), (40.7128, -74.0060), (33.4484, -112.0740), (39.7392, -104.9903),
    (35.6714, -109.0665), (47.3769, 8.5417), (41.8781, -87.6298), (0.5, -30.0), (0.0, 0.0),
    (51.0, 1.5), (52.3676, 4.9041), (50.8503, 4.3517), (52.52, 13.405),
]


def covering_zones(dsn, latitude, longitude):
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT tzid FROM tz_world WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
                       (longitude, latitude))
        return sorted(row[0] for row in cursor.fetchall())


@pytest.fixture
def index(tz_world_dsn):
    # A generous statement timeout: these tests are about answers; a busy CI machine can take longer
    # than production's 200 ms. test_statement_timeout_is_honoured checks the timeout itself.
    index = PostgisTimezoneIndex(tz_world_dsn, statement_timeout_ms=5000, pool_size=2, retry_after=0.5)
    yield index
    index.close()


def test_same_zone_as_the_embedded_index(index):
    embedded = EmbeddedTimezoneIndex()
    for point in POINTS:
        assert index.zone_at(*point) == embedded.zone_at(*point), point


def test_known_answers_and_at_sea(index):
    assert index.zone_at(43.7384, 7.4246) == ZoneMatch("Europe/Monaco", False)
    assert index.zone_at(54.7104, 20.4522) == ZoneMatch("Europe/Kaliningrad", False)
    assert index.zone_at(35.6714, -109.0665) == ZoneMatch("America/Denver", False)  # Navajo Nation
    assert index.zone_at(33.4484, -112.0740) == ZoneMatch("America/Phoenix", False)
    assert index.zone_at(0.5, -30.0) == ZoneMatch("Etc/GMT+2", True)
    assert index.zone_at(51.0, 1.5) == ZoneMatch("Europe/Paris", False)  # territorial waters


def test_overlapping_zones_follow_the_documented_rule(index, tz_world_dsn):
    urumqi = (43.8256, 87.6168)
    assert covering_zones(tz_world_dsn, *urumqi) == ["Asia/Shanghai", "Asia/Urumqi"]  # a real overlap
    answers = {index.zone_at(*urumqi) for _ in range(5)}
    assert answers == {ZoneMatch("Asia/Shanghai", False)}


def test_a_point_exactly_on_a_border_always_gets_the_same_answer(index, tz_world_dsn):
    # A vertex of Monaco's outline that France's outline shares: covered by both zones.
    with psycopg2.connect(tz_world_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_Y(p.geom), ST_X(p.geom) FROM tz_world m, tz_world f, ST_DumpPoints(m.geom) p "
            "WHERE m.tzid = 'Europe/Monaco' AND f.tzid = 'Europe/Paris' AND ST_Covers(f.geom, p.geom) LIMIT 1")
        border = cursor.fetchone()
    assert border is not None
    zones = covering_zones(tz_world_dsn, *border)
    assert len(zones) >= 2
    expected = min(zones, key=precedence)
    assert {index.zone_at(*border).name for _ in range(5)} == {expected}


def test_a_point_on_a_subdivision_cut_line_is_in_its_zone(index, tz_world_dsn):
    # ST_Contains would miss it: the point is on the edge of two pieces of the same zone.
    with psycopg2.connect(tz_world_dsn) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_Y(p.geom), ST_X(p.geom) FROM tz_world_lookup l, tz_world w, ST_DumpPoints(l.geom) p "
            "WHERE l.tzid = 'Europe/Paris' AND w.tzid = 'Europe/Paris' "
            "AND NOT ST_Intersects(ST_Boundary(w.geom), p.geom) LIMIT 1")
        cut = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM tz_world_lookup WHERE tzid = 'Europe/Paris' "
                       "AND ST_Contains(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))", (cut[1], cut[0]))
        assert cursor.fetchone()[0] == 0  # ... which is why the index uses ST_Covers
    assert index.zone_at(*cut) == ZoneMatch("Europe/Paris", False)


def test_no_polygon_means_no_zone(index):
    assert index.zone_at(-33.8688, 151.2093) is None  # Sydney: not in the small load
    assert index.zone_at(float("nan"), 0.0) is None and index.zone_at(95.0, 0.0) is None


def test_the_query_uses_the_subdivided_table_and_its_index(tz_world_dsn):
    with psycopg2.connect(tz_world_dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # the small table could be seq-scanned; the plan shape is what counts
        cursor.execute("EXPLAIN SELECT tzid FROM tz_world_lookup WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326))")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "tz_world_lookup_geom_idx" in plan


def test_threads_share_a_small_pool(tz_world_dsn):
    # a generous pool wait: this checks sharing, not how long a loaded CI machine makes threads queue
    index = PostgisTimezoneIndex(tz_world_dsn, statement_timeout_ms=5000, pool_size=2, pool_wait=30)
    expected = {point: index.zone_at(*point) for point in POINTS}
    errors = []

    def work():
        try:
            for _ in range(10):
                for point in POINTS:
                    assert index.zone_at(*point) == expected[point]
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_status_reports_the_loaded_release(index):
    status = index.status()
    assert status["backend"] == "postgis" and status["state"] == "ok"
    assert status["data_release"].startswith("2026c (timezonefinder-data ")
    assert "ODbL" in status["attribution"]


def test_statement_timeout_is_honoured(tz_world_dsn):
    index = PostgisTimezoneIndex(tz_world_dsn, statement_timeout_ms=1000, pool_size=1, retry_after=0.3)
    assert index.zone_at(48.8566, 2.3522).name == "Europe/Paris"  # connected and prepared
    blocker = psycopg2.connect(tz_world_dsn)
    try:
        with blocker.cursor() as cursor:  # a loader mid-swap holds this lock
            cursor.execute("LOCK TABLE tz_world_lookup IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(TimezoneBackendUnavailable, match="statement timeout"):
            index.zone_at(40.4168, -3.7038)
        assert index.status()["state"] == "unavailable"
    finally:
        blocker.rollback()
        blocker.close()
    time.sleep(0.35)
    assert index.zone_at(40.4168, -3.7038).name == "Europe/Madrid"  # same object, same pool
    index.close()


def test_outage_answers_unavailable_then_recovers_without_a_new_object(tz_world_outage):
    index = PostgisTimezoneIndex(tz_world_outage.tz_dsn, statement_timeout_ms=5000, pool_size=2, retry_after=2.0)
    assert index.zone_at(48.8566, 2.3522).name == "Europe/Paris"

    tz_world_outage.stop()
    with pytest.raises(TimezoneBackendUnavailable):
        index.zone_at(51.5074, -0.1278)
    failed_at = time.monotonic()
    tz_world_outage.start()
    # Inside the retry window the index does not even try, although the server is back.
    if time.monotonic() - failed_at < 1.5:
        with pytest.raises(TimezoneBackendUnavailable):
            index.zone_at(51.5074, -0.1278)
        assert index.status()["state"] == "unavailable"
    time.sleep(max(0.0, failed_at + 2.05 - time.monotonic()))
    assert index.zone_at(51.5074, -0.1278) == ZoneMatch("Europe/London", False)
    assert index.status()["state"] == "ok"
    index.close()


def test_a_database_without_tz_world_is_reported_not_crashed(postgres_server):
    dsn = postgres_server.create_database("tz_world_empty")
    index = PostgisTimezoneIndex(dsn, retry_after=0.1, statement_timeout_ms=5000)
    status = index.status()
    assert status["state"] == "unavailable" and "load-tz-world" in status["detail"]
    with pytest.raises(TimezoneBackendUnavailable):
        index.zone_at(48.8566, 2.3522)


def test_factory_picks_postgis_when_a_database_url_is_set(tz_world_dsn):
    index = open_timezone_index(Config(tz_database_url=tz_world_dsn, tz_statement_timeout_ms=5000))
    try:
        assert index.backend == "postgis"
        assert index.zone_at(48.8566, 2.3522) == ZoneMatch("Europe/Paris", False)
        assert index.version is not None  # the tz_world load: the lookup service's zone cache is keyed on it
    finally:
        index.close()


def test_cache_never_keeps_a_failure(tz_world_outage):
    from app.lookup import ZoneCache
    index = open_timezone_index(Config(tz_database_url=tz_world_outage.tz_dsn, tz_retry_after=0.1, tz_statement_timeout_ms=5000))
    zones = ZoneCache(index, 16)  # the lookup service's cache in front of the index
    tz_world_outage.stop()
    with pytest.raises(TimezoneBackendUnavailable):
        zones.zone_at(48.8566, 2.3522)
    tz_world_outage.start()
    time.sleep(0.15)
    assert zones.zone_at(48.8566, 2.3522).name == "Europe/Paris"
    index.close()


def test_a_forked_worker_makes_its_own_pool_and_leaves_the_parents_alone(index):
    # uWSGI forks workers from a master; a connection shared across the fork would mix two
    # processes' traffic on one socket.
    import os

    assert index.zone_at(48.8566, 2.3522).name == "Europe/Paris"  # parent pool exists now
    parent_backend = index._run("SELECT pg_backend_pid()")
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            answer = index.zone_at(51.5074, -0.1278).name.encode()
        except BaseException as exc:
            answer = repr(exc).encode()
        os.write(writer, answer)
        os._exit(0)
    os.close(writer)
    answer = os.read(reader, 200).decode()
    os.close(reader)
    os.waitpid(child, 0)
    assert answer == "Europe/London"
    assert index.zone_at(40.4168, -3.7038).name == "Europe/Madrid"
    assert index._run("SELECT pg_backend_pid()") == parent_backend  # the very same session survived
