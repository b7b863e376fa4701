"""The City file replaced by a rename: every worker switches by itself, no request fails."""
import ipaddress
import os
import shutil
import threading
import time

from app.citydb import CityDatabase
from tests.support.city_fixtures import place, write_city_db

ADDRESS = ipaddress.ip_address("81.2.69.160")


def generation_db(path, n):
    return write_city_db(path, {"81.2.69.0/24": place(f"Gen{n}", n + 1, lat=51.5, lon=-0.1, radius=10,
                                                      time_zone="Europe/London")})


def city_name(db):
    return db.lookup(ADDRESS).city_name


class ManualClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def test_rename_is_picked_up_at_the_first_check_after_the_interval(tmp_path):
    path = tmp_path / "city.mmdb"
    generation_db(path, 0)
    clock = ManualClock()
    db = CityDatabase(str(path), check_interval=0.5, clock=clock)
    assert city_name(db) == "Gen0"
    generation_db(path, 1)
    clock.advance(0.49)
    assert city_name(db) == "Gen0"  # not due for a check yet: no stat on the hot path
    clock.advance(0.01)
    assert city_name(db) == "Gen1" and db.reloads == 2


def test_ten_swaps_under_concurrent_lookups(tmp_path):
    """Four threads look up all the time while the file is replaced ten times; time moves only
    when the test says (so each swap is checked for exactly when the interval has passed)."""
    path = tmp_path / "city.mmdb"
    generation_db(path, 0)
    clock = ManualClock()
    db = CityDatabase(str(path), check_interval=0.05, clock=clock)
    assert city_name(db) == "Gen0"  # loaded before the first swap, or Gen0 could never be served
    failures, stop = [], threading.Event()
    seen = [set() for _ in range(4)]
    lookups = [0] * 4

    def hammer(index):
        while not stop.is_set():
            try:
                name = city_name(db)
                if not (name.startswith("Gen") and name[3:].isdigit()):
                    failures.append(f"garbled: {name!r}")
                seen[index].add(name)
                lookups[index] += 1
            except Exception as exc:  # any failure at all is a test failure
                failures.append(repr(exc))

    def each_thread_looked_up_again():
        before = list(lookups)
        give_up = time.monotonic() + 30  # generous: only a hung thread misses it
        # Two more each: the second one certainly began after this call did.
        while any(now - then < 2 for now, then in zip(lookups, before)):
            assert time.monotonic() < give_up and not failures, failures
            time.sleep(0.001)

    threads = [threading.Thread(target=hammer, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    try:
        each_thread_looked_up_again()
        for n in range(1, 11):
            generation_db(path, n)
            clock.advance(0.05)
            give_up = time.monotonic() + 30
            # Another thread may be the one checking; it swaps in the new file, then everyone has it.
            while city_name(db) != f"Gen{n}":
                assert time.monotonic() < give_up, f"Gen{n} never served"
                time.sleep(0.001)
            each_thread_looked_up_again()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert db.reloads == 11 and city_name(db) == "Gen10"
    # Every thread saw the first and the last generation, and nothing that is not a generation.
    for names in seen:
        assert {"Gen0", "Gen10"} <= names <= {f"Gen{n}" for n in range(11)}, names


def test_garbage_or_deleted_file_keeps_the_last_good_map(tmp_path, maxmind_testdata):
    path = tmp_path / "city.mmdb"
    generation_db(path, 0)
    db = CityDatabase(str(path), check_interval=0.01)
    assert city_name(db) == "Gen0"

    garbage = tmp_path / "garbage"
    garbage.write_bytes(os.urandom(4096))
    os.replace(garbage, path)
    time.sleep(0.02)
    assert city_name(db) == "Gen0" and "could not be opened" in db.last_error

    shutil.copy(maxmind_testdata / "GeoLite2-ASN-Test.mmdb", tmp_path / "asn")
    os.replace(tmp_path / "asn", path)
    time.sleep(0.02)
    assert city_name(db) == "Gen0" and "not a City database" in db.last_error

    path.unlink()
    time.sleep(0.02)
    assert city_name(db) == "Gen0" and "missing" in db.last_error

    generation_db(path, 5)
    time.sleep(0.02)
    assert city_name(db) == "Gen5" and db.last_error is None


def test_readyz_reports_a_broken_replacement(make_app, city_db):
    client = make_app().test_client()
    assert client.get("/readyz").get_json()["status"] == "ready"
    (city_db.parent / "junk").write_bytes(b"\0" * 100)
    os.replace(city_db.parent / "junk", city_db)
    time.sleep(0.1)
    report = client.get("/readyz").get_json()
    assert report["status"] == "degraded" and "could not be opened" in report["database"]["error"]
    assert client.get("/api/v1/lookup/81.2.69.160").status_code == 200


def test_writes_into_the_live_file_never_reach_the_map(tmp_path):
    """`cp garbage city.mmdb` truncates and rewrites the live inode: the worker's private copy is untouched."""
    path = tmp_path / "city.mmdb"
    generation_db(path, 0)
    copies = tmp_path / "copies"
    db = CityDatabase(str(path), check_interval=0.01, copy_dir=str(copies))
    assert city_name(db) == "Gen0"
    assert [p.name for p in copies.iterdir()] and all(p.stat().st_ino != path.stat().st_ino for p in copies.iterdir())
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 5)
    with open(path, "ab") as handle:
        handle.write(os.urandom(1000))
    time.sleep(0.02)
    for _ in range(50):
        assert city_name(db) == "Gen0"
    assert "could not be opened" in db.last_error


def test_one_copy_per_version_shared_and_old_ones_removed(tmp_path):
    path = tmp_path / "city.mmdb"
    generation_db(path, 0)
    copies = tmp_path / "copies"
    workers = [CityDatabase(str(path), check_interval=0.01, copy_dir=str(copies)) for _ in range(3)]
    assert {city_name(db) for db in workers} == {"Gen0"}
    assert len(list(copies.iterdir())) == 1
    generation_db(path, 1)
    time.sleep(0.02)
    assert {city_name(db) for db in workers} == {"Gen1"}
    assert len(list(copies.iterdir())) == 1


def test_workers_racing_on_a_new_version_all_map_one_copy(tmp_path):
    path = tmp_path / "city.mmdb"
    generation_db(path, 0)
    copies = tmp_path / "copies"
    workers = [CityDatabase(str(path), check_interval=0.01, copy_dir=str(copies)) for _ in range(8)]
    start = threading.Barrier(len(workers))

    def first_lookup(db):
        start.wait()
        city_name(db)

    threads = [threading.Thread(target=first_lookup, args=(db,)) for db in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [copy] = list(copies.iterdir())
    mapped = {line.split()[-1] for line in open("/proc/self/maps") if str(copies) in line}
    assert mapped == {str(copy)}  # one inode, shared: no worker kept a copy of its own


def test_first_load_racing_a_rename_still_answers(tmp_path, monkeypatch):
    """The first lookup finds the file replaced while it copied it: it must load the new file at
    once (nothing is loaded to serve meanwhile), not fail with DATABASE_UNAVAILABLE."""
    path = tmp_path / "city.mmdb"
    generation_db(path, 0)
    db = CityDatabase(str(path), check_interval=60, copy_dir=str(tmp_path / "copies"))
    real_copy = db._private_copy
    calls = []

    def copy_during_a_rename(signature):
        calls.append(signature)
        if len(calls) == 1:
            generation_db(path, 1)  # renamed over the path while the first copy was made
            return None
        return real_copy(signature)

    monkeypatch.setattr(db, "_private_copy", copy_during_a_rename)
    assert city_name(db) == "Gen1"
    assert len(calls) == 2 and db.reloads == 1
