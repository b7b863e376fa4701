"""The embedded (timezonefinder) index: known zones, the overlap rule, at-sea marking, threads, the cache."""
import math
import random
import threading

import pytest
from timezonefinder import TimezoneFinder

from app.config import Config
from app.timezones import open_timezone_index
from app.timezones.base import ZoneMatch
from app.timezones.cache import CachedTimezoneIndex
from app.timezones.embedded import EmbeddedTimezoneIndex
from app.timezones.overlap import precedence

# Zones that deliberately overlap in timezone-boundary-builder: here the rule, not the data, decides.
OVERLAPPING = {"Asia/Shanghai", "Asia/Urumqi", "Asia/Hebron", "Asia/Jerusalem", "Africa/Juba", "Africa/Khartoum",
               "Asia/Thimphu"}


@pytest.fixture(scope="module")
def index():
    index = EmbeddedTimezoneIndex()
    yield index
    index.close()


@pytest.mark.parametrize("latitude, longitude, name", [
    (51.5074, -0.1278, "Europe/London"),
    (48.8566, 2.3522, "Europe/Paris"),
    (43.7384, 7.4246, "Europe/Monaco"),
    (43.7102, 7.2620, "Europe/Paris"),        # Nice, next door to Monaco
    (54.7104, 20.4522, "Europe/Kaliningrad"),
    (35.6762, 139.6503, "Asia/Tokyo"),
    (35.1983, -111.6513, "America/Phoenix"),  # Flagstaff: Arizona, no DST
    (35.6714, -109.0665, "America/Denver"),   # Window Rock: Navajo Nation, DST
])
def test_known_places(index, latitude, longitude, name):
    assert index.zone_at(latitude, longitude) == ZoneMatch(name, at_sea=False)


def test_ocean_points_are_marked_at_sea(index):
    assert index.zone_at(0.5, -30.0) == ZoneMatch("Etc/GMT+2", at_sea=True)
    assert index.zone_at(-40.0, 100.0) == ZoneMatch("Etc/GMT-7", at_sea=True)
    # territorial waters belong to the coast's zone: the Strait of Dover off Calais is not "at sea"
    assert index.zone_at(51.0, 1.5) == ZoneMatch("Europe/Paris", at_sea=False)


def test_overlap_goes_to_the_rule_not_to_candidate_order(index):
    # Urumqi, inside both Asia/Shanghai and Asia/Urumqi; timezonefinder's own order says Urumqi.
    assert TimezoneFinder().timezone_at(lat=43.8256, lng=87.6168) == "Asia/Urumqi"
    assert min(["Asia/Urumqi", "Asia/Shanghai"], key=precedence) == "Asia/Shanghai"
    for _ in range(3):
        assert index.zone_at(43.8256, 87.6168) == ZoneMatch("Asia/Shanghai", at_sea=False)


def test_rule_puts_land_before_ocean_then_code_point_order():
    assert sorted(["Etc/GMT-1", "Europe/Paris", "Europe/Monaco", "America/Port_of_Spain", "America/Port-au-Prince"],
                  key=precedence) == ["America/Port-au-Prince", "America/Port_of_Spain", "Europe/Monaco",
                                      "Europe/Paris", "Etc/GMT-1"]


def test_same_answers_as_timezonefinder_outside_overlaps(index):
    # Guards the timezonefinder internals the index walks: any drift shows up as disagreements here.
    finder = TimezoneFinder()
    rng = random.Random(20260)
    differ = []
    for _ in range(20_000):
        latitude, longitude = rng.uniform(-90, 90), rng.uniform(-180, 180)
        ours, theirs = index.zone_at(latitude, longitude), finder.timezone_at(lat=latitude, lng=longitude)
        if ours.name != theirs and not {ours.name, theirs} <= OVERLAPPING:
            differ.append((latitude, longitude, ours.name, theirs))
    assert differ == []


@pytest.mark.parametrize("latitude, longitude", [
    (math.nan, 0.0), (0.0, math.inf), (90.0001, 0.0), (-91, 0), (0, 180.5), (0, -181),
])
def test_impossible_coordinates_have_no_zone(index, latitude, longitude):
    assert index.zone_at(latitude, longitude) is None


def test_poles_and_antimeridian_answer(index):
    for latitude, longitude in [(90, 0), (-90, 0), (0, 180), (0, -180), (-89.9, 179.99)]:
        assert index.zone_at(latitude, longitude) is not None


def test_threads_get_the_same_answers(index):
    rng = random.Random(7)
    points = [(rng.uniform(-60, 70), rng.uniform(-180, 180)) for _ in range(400)]
    expected = [index.zone_at(*point) for point in points]
    results, errors = {}, []

    def work(worker):
        try:
            results[worker] = [index.zone_at(*point) for point in points]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and all(answers == expected for answers in results.values())


def test_status_names_the_data_release(index):
    status = index.status()
    assert status["backend"] == "embedded" and status["state"] == "ok"
    assert status["data_release"].startswith("2026c (timezonefinder-data 3.2026.3")
    assert "ODbL" in status["attribution"] and "timezone-boundary-builder" in status["attribution"]


def test_cache_answers_repeated_coordinates_without_the_index(index):
    cached = CachedTimezoneIndex(index, size=2)
    assert cached.zone_at(48.8566, 2.3522).name == "Europe/Paris"
    assert cached.zone_at(48.8566, 2.3522).name == "Europe/Paris"
    assert cached.cache_info().hits == 1 and cached.cache_info().misses == 1
    cached.zone_at(51.5, -0.12)
    cached.zone_at(35.68, 139.65)  # evicts Paris: the least recently used of a two-entry cache
    cached.zone_at(48.8566, 2.3522)
    assert cached.cache_info().misses == 4
    assert cached.zone_at(91.0, 0.0) is None and cached.zone_at(91.0, 0.0) is None  # "no zone" is cached too
    assert cached.cache_info().hits == 2
    assert cached.status()["cache"]["entries"] == 2 and cached.backend == "embedded"


def test_factory_picks_embedded_without_a_database_url():
    index = open_timezone_index(Config())
    try:
        # no coordinate cache: the index answers as fast as one, and records keep their answers
        assert isinstance(index, EmbeddedTimezoneIndex) and index.backend == "embedded"
        assert index.zone_at(48.8566, 2.3522).name == "Europe/Paris"
    finally:
        index.close()


def test_threads_share_a_few_finders_rather_than_one_each():
    """Each timezonefinder instance holds megabytes of arrays; 32 threads must not make 32."""
    import concurrent.futures

    index = EmbeddedTimezoneIndex(pool_size=2)
    points = [(48.8566, 2.3522), (51.5074, -0.1278), (40.7128, -74.006), (-33.87, 151.21)] * 50
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda point: index.zone_at(*point), points))
    assert {match.name for match in answers} == {"Europe/Paris", "Europe/London", "America/New_York",
                                                 "Australia/Sydney"}
    assert len(index._all) <= 2
    index.close()
    assert index.zone_at(48.8566, 2.3522).name == "Europe/Paris"  # usable again after close


def test_opening_the_index_imports_neither_timezonefinder_nor_numpy_until_a_lookup():
    # Most processes never look a point up (GeoLite2's records carry their zone): opening the
    # index, and its status, must not cost them numpy and timezonefinder.
    import subprocess
    import sys
    from pathlib import Path

    from timezonefinder.configs import DATA_VERSION_FILENAME

    from app.timezones import packaged_data

    assert packaged_data.DATA_VERSION_FILENAME == DATA_VERSION_FILENAME
    probe = ("import sys; from app.timezones.embedded import EmbeddedTimezoneIndex; index = EmbeddedTimezoneIndex(); "
             "index.status(); print(sorted(m for m in ('numpy', 'timezonefinder', 'h3') if m in sys.modules)); "
             "print(index.zone_at(48.8566, 2.3522).name)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "Europe/Paris"]
