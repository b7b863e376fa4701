"""Inputs of the fleet's capacity math (docs/scaling.md, "Capacity"), measured on this machine.

    .venv/bin/python -m bench.bench_fleet [--lookups 100000] [--seconds 10] [--dsn DSN]

1. tz_world queries per lookup after the caches. One worker's services, as a replica with PostGIS
   runs them (record cache GEOIP_RECORD_CACHE_SIZE, then the coordinate cache TZ_CACHE_SIZE in
   front of the time-zone backend), are warmed on 20,000 addresses and then shown `--lookups`
   other seeded random public IPv4 addresses; every call that gets past both caches is what would
   be a query to PostGIS. Reported per City file (DB-IP Lite has no time zones of its own, so
   every record needs the fallback; GeoLite2's records mostly carry theirs).
2. What one PostGIS sustains: the app's own query (PostgisTimezoneIndex, no cache) from 1, 2 and
   4 client threads for `--seconds` each, over seeded points (half sea, half around cities), on a
   PostgreSQL started here with the full tz_world load (or the one given with --dsn). Client and
   server share this machine's cores, so the figure is a floor.

Writes bench/results/fleet-<time>.json and prints a table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import sys
import threading
import time
from pathlib import Path

import maxminddb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from app.config import Config  # noqa: E402
from app.services import Services  # noqa: E402
from app.timezones.loader import load_tz_world  # noqa: E402
from app.timezones.postgis import PostgisTimezoneIndex  # noqa: E402
from bench.addresses import located, public_ipv4  # noqa: E402
from bench.bench_timezones import seeded_points  # noqa: E402
from bench.city_files import available  # noqa: E402

RESULTS_DIR = REPO / "bench" / "results"
WARM_SEED = 7


def queries_per_lookup(city_file, lookups: int) -> dict:
    config = Config(city_db_path=str(city_file.path), city_db_check_interval=0.5)
    services = Services(config)
    index = services.timezones  # the embedded index (no TZ_DATABASE_URL): counted like PostGIS would be
    backend_calls = [0]
    answer = index.zone_at

    def counted(latitude, longitude):
        backend_calls[0] += 1
        return answer(latitude, longitude)

    # The coordinate cache a PostGIS-backed worker has (app/timezones/cache.py), in front of the count.
    index.zone_at = functools.lru_cache(maxsize=config.tz_cache_size)(counted)
    reader = maxminddb.open_database(str(city_file.path))
    warm = located(public_ipv4(20_000, seed=WARM_SEED), reader)
    measured = located(public_ipv4(lookups * 2), reader)[:lookups]
    reader.close()
    for text in warm:
        services.lookup.lookup(text)
    before_calls = backend_calls[0]
    records_before = services.city_db.cache_info()
    for text in measured:
        services.lookup.lookup(text)
    records_after = services.city_db.cache_info()
    hits = records_after["hits"] - records_before["hits"]
    misses = records_after["misses"] - records_before["misses"]
    queries = backend_calls[0] - before_calls
    return {"file": city_file.label, "lookups": len(measured), "record_cache_size": config.record_cache_size,
            "tz_cache_size": config.tz_cache_size, "record_cache_hit_ratio": round(hits / max(1, hits + misses), 4),
            "tz_backend_queries": queries, "queries_per_lookup": round(queries / max(1, len(measured)), 4)}


def postgis_capacity(dsn: str, seconds: float, thread_counts=(1, 2, 4)) -> list[dict]:
    points = seeded_points(20_000)
    results = []
    for threads in thread_counts:
        index = PostgisTimezoneIndex(dsn, pool_size=threads)
        index.zone_at(*points[0])  # the pool is made on first use
        counts = [0] * threads
        stop = threading.Event()

        def run(slot: int) -> None:
            position = slot * len(points) // threads
            while not stop.is_set():
                index.zone_at(*points[position % len(points)])
                position += 1
                counts[slot] += 1

        workers = [threading.Thread(target=run, args=(slot,)) for slot in range(threads)]
        started = time.monotonic()
        cpu_started = os.times()
        for worker in workers:
            worker.start()
        time.sleep(seconds)
        stop.set()
        for worker in workers:
            worker.join()
        elapsed = time.monotonic() - started
        results.append({"threads": threads, "queries_per_second": round(sum(counts) / elapsed),
                        "client_cpu_seconds": round(sum(os.times()[:2]) - sum(cpu_started[:2]), 2),
                        "seconds": round(elapsed, 1)})
        index.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--dsn", help="a PostgreSQL with tz_world loaded (default: start one and load it)")
    args = parser.parse_args(argv)
    results = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "cores": os.cpu_count(),
               "load_average_before": os.getloadavg()}
    results["queries_per_lookup"] = [queries_per_lookup(f, args.lookups) for f in available()]
    server = None
    dsn = args.dsn
    if dsn is None:
        from tests.support.postgres import started_server

        server = started_server(settings={"shared_buffers": "512MB"})
        dsn = server.create_database("tz_world_fleet")
        load_tz_world(dsn)
    try:
        results["postgis"] = postgis_capacity(dsn, args.seconds)
    finally:
        if server is not None:
            server.close()
    results["load_average_after"] = os.getloadavg()
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"fleet-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%MZ}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    for row in results["queries_per_lookup"]:
        print(f"{row['file']}: {row['queries_per_lookup']} tz_world queries per lookup "
              f"(record cache hit ratio {row['record_cache_hit_ratio']:.1%}, {row['lookups']} lookups)")
    for row in results["postgis"]:
        print(f"PostGIS, {row['threads']} client threads: {row['queries_per_second']} queries/s")
    print(f"load average before {results['load_average_before']}, after {results['load_average_after']}; {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
