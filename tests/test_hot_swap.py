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


def test_rename_is_picked_up_within_a_second(tmp_path):
    path = tmp_path / "city.mmdb"
    generation_db(path, 0)
    db = CityDatabase(str(path), check_interval=0.5)
    assert city_name(db) == "Gen0"
    generation_db(path, 1)
    started = time.monotonic()
    while city_name(db) != "Gen1":
        assert time.monotonic() - started < 1.0
        time.sleep(0.01)


def test_ten_swaps_under_concurrent_lookups(tmp_path):
    path = tmp_path / "city.mmdb"
    generation_db(path, 0)
    db = CityDatabase(str(path), check_interval=0.05)
    assert city_name(db) == "Gen0"  # loaded before the first swap, or Gen0 could never be served
    failures, seen, stop = [], set(), threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                name = city_name(db)
                if not (name.startswith("Gen") and name[3:].isdigit()):
                    failures.append(f"garbled: {name!r}")
                seen.add(name)
            except Exception as exc:  # any failure at all is a test failure
                failures.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for n in range(1, 11):
            generation_db(path, n)
            deadline = time.monotonic() + 1.0  # every version is served within a second
            while city_name(db) != f"Gen{n}":
                assert time.monotonic() < deadline, f"Gen{n} not served within a second"
                time.sleep(0.01)
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert db.reloads == 11 and city_name(db) == "Gen10"
    assert {"Gen0", "Gen10"} <= seen and len(seen) >= 6


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
