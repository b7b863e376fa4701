"""Figure 6: memory per uWSGI worker with a real-size City file, at 1, 2 and 4 workers.

Each worker maps the City file read-only (MODE_MMAP_EXT), so its pages live once in the page
cache and every worker's map points at them. After a warm-up that sends lookups to every
worker, and single lookups of many distinct addresses that fill every worker's record cache
(a long-running worker's steady state: docs/architecture.md), we read /proc/<pid>/smaps_rollup
(whole process) and /proc/<pid>/smaps (the City map). /readyz, sampled from every worker, tells
how full the record caches were.

  RSS      resident pages the worker maps, shared ones included (overstates the cost)
  PSS      each shared page divided among the processes that map it (sums to the real total)
  private  Private_Clean + Private_Dirty: pages only this worker maps
  anon     Anonymous: the heap (Python objects, caches), never shared after lazy-apps' fork

The cost of one more worker is the growth of the summed PSS (master + workers) from N to M
workers, divided by M - N. Target: at most 30 MB per extra worker; with the real-size ASN file
loaded too (GEOIP_ASN_DB: its own map, shared the same way, and its own record cache), at most 35.
"""
from __future__ import annotations

import collections
import concurrent.futures
import http.client
import json

from .stack import ServingStack

TARGET_MB_PER_EXTRA_WORKER = 30.0
TARGET_MB_PER_EXTRA_WORKER_WITH_ASN = 35.0
WORKER_COUNTS = (1, 2, 4)
# Distinct addresses looked up per worker before measuring: about 6,000 of 20,000 random located
# addresses have a record of their own, so the default 5,120-record cache is full.
FILL_PER_WORKER = 20_000
_FIELDS = ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Anonymous", "Shared_Clean")


def _kib_fields(lines) -> dict:
    values = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name in _FIELDS:
            values[name] = int(rest.split()[0])
    return values


def process_memory(pid: int, mapped_file: str) -> dict:
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        whole = _kib_fields(handle.readlines()[1:])
    city = dict.fromkeys(_FIELDS, 0)
    mapped = False
    files = set()  # (device, inode) of every City map: the same in every worker when it is shared
    with open(f"/proc/{pid}/smaps") as handle:
        in_city = False
        for line in handle:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5 and ":" not in head[0]:  # a mapping's header
                # The workers map a private copy of the City file, named under this prefix.
                in_city = len(head) >= 6 and head[5].startswith(mapped_file)
                mapped = mapped or in_city
                if in_city:
                    files.add(f"{head[3]}:{head[4]}")
                continue
            if in_city:
                for name, value in _kib_fields([line]).items():
                    city[name] += value
    mb = lambda kib: round(kib / 1024, 1)  # noqa: E731
    return {
        "pid": pid,
        "rss_mb": mb(whole["Rss"]), "pss_mb": mb(whole["Pss"]),
        "private_mb": mb(whole["Private_Clean"] + whole["Private_Dirty"]), "anon_mb": mb(whole["Anonymous"]),
        "city_map": {"mapped": mapped, "rss_mb": mb(city["Rss"]), "pss_mb": mb(city["Pss"]),
                     "private_mb": mb(city["Private_Clean"] + city["Private_Dirty"]),
                     "rss_kb": city["Rss"], "pss_kb": city["Pss"], "files": sorted(files)},
    }


def _post_batch(port: int, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", "/api/v1/lookup", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _get_many(port: int, paths: list[str]) -> collections.Counter:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    statuses = collections.Counter()
    try:
        for path in paths:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            statuses[response.status] += 1
    finally:
        connection.close()
    return statuses


def every_worker_mapped(stack: ServingStack, mapped: str) -> bool:
    return all(process_memory(pid, mapped)["city_map"]["mapped"] for pid in stack.worker_pids())


def warm_with_single_lookups(stack: ServingStack, addresses: list[str], mapped: str, attempts: int = 10) -> int:
    """More clients than all workers' threads together, each sending single GETs, until every
    worker has served lookups (uWSGI does not hand requests out round robin: light load can leave
    a worker idle and its City map unopened).

    Returns how many of the very first burst's answers were 503: a worker's first concurrent
    requests can find its City map not yet opened (CityDatabase race, reported on issue 7).
    Any other failure, or a 503 after the first round, stops the bench."""
    clients = stack.workers * stack.threads + stack.threads
    per_client = max(50, len(addresses) // clients)
    paths = [f"/api/v1/lookup/{address}" for address in addresses]
    slices = [[paths[(i * per_client + j) % len(paths)] for j in range(per_client)] for i in range(clients)]
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        first_burst_503 = 0
        for attempt in range(attempts):
            statuses = sum(pool.map(lambda paths: _get_many(stack.port, paths), slices), collections.Counter())
            if attempt == 0:
                first_burst_503 = statuses.pop(503, 0)
            if set(statuses) != {200}:
                raise RuntimeError(f"warm-up lookups answered {dict(statuses)}: {stack.log_tail(1500)}")
            if every_worker_mapped(stack, mapped):
                return first_burst_503
    raise RuntimeError("some uWSGI workers never received a lookup")


def fill_record_caches(stack: ServingStack, addresses: list[str]) -> dict:
    """Each address looked up once (single GETs over as many connections as the workers have
    threads, so every worker takes its share), then /readyz asked many times at once, so that
    every worker answers some: how many records its cache held, against its capacity."""
    clients = stack.workers * stack.threads
    paths = [f"/api/v1/lookup/{address}" for address in addresses]
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        statuses = sum(pool.map(lambda index: _get_many(stack.port, paths[index::clients]), range(clients)),
                       collections.Counter())
        if set(statuses) - {200, 404}:
            raise RuntimeError(f"cache-filling lookups answered {dict(statuses)}")
        samples = list(pool.map(lambda _: _record_cache(stack.port), range(clients)))
    entries = [sample["entries"] for sample in samples]
    return {"lookups": len(paths), "capacity": samples[0]["capacity"], "entries_min": min(entries),
            "entries_max": max(entries), "full": min(entries) >= samples[0]["capacity"]}


def _record_cache(port: int) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", "/readyz")
        return json.loads(connection.getresponse().read())["database"]["record_cache"]
    finally:
        connection.close()


def after_batches(stack: ServingStack, addresses: list[str], rounds: int = 3) -> None:
    """Batch traffic: as many 1,000-address batches in flight as the workers have threads."""
    body = json.dumps({"targets": addresses[:1000]}).encode()
    in_flight = stack.workers * stack.threads
    with concurrent.futures.ThreadPoolExecutor(in_flight) as pool:
        for _ in range(rounds):
            statuses = set(pool.map(lambda _: _post_batch(stack.port, body), range(in_flight)))
            if statuses != {200}:
                raise RuntimeError(f"batches answered {sorted(statuses)}")


def _row(stack: ServingStack, mapped: str) -> dict:
    per_worker = [process_memory(pid, mapped) for pid in stack.worker_pids()]
    master = process_memory(stack.master_pid(), mapped)
    return {
        "workers": stack.workers,
        "per_worker": per_worker,
        "master_pss_mb": master["pss_mb"],
        "total_pss_mb": round(master["pss_mb"] + sum(worker["pss_mb"] for worker in per_worker), 1),
        "workers_with_city_map": sum(1 for worker in per_worker if worker["city_map"]["mapped"]),
        # One file mapped by all workers (its pages shared), or a file per worker (not shared).
        "distinct_city_files": len({name for worker in per_worker for name in worker["city_map"]["files"]}),
    }


def _increments(rows: list[dict]) -> list[dict]:
    return [{"from_workers": before["workers"], "to_workers": after["workers"],
             "mb_per_extra_worker": round((after["total_pss_mb"] - before["total_pss_mb"])
                                          / (after["workers"] - before["workers"]), 1)}
            for before, after in zip(rows, rows[1:])]


def _rows(city_file, addresses: list[str], worker_counts, env: dict | None, with_batches: bool,
          fill_addresses: list[str]):
    rows, batch_rows = [], []
    for workers in worker_counts:
        with ServingStack(city_file.path, workers=workers, env=env) as stack:
            mapped = str(stack.city_db_copies)
            first_burst_503 = warm_with_single_lookups(stack, addresses, mapped)
            # the same traffic per worker at every count, so that one more worker is compared like for like
            record_caches = fill_record_caches(stack, fill_addresses[: FILL_PER_WORKER * workers])
            rows.append(_row(stack, mapped) | {"first_burst_503": first_burst_503, "record_caches": record_caches})
            if with_batches:
                after_batches(stack, addresses)
                batch_rows.append(_row(stack, mapped))
    return rows, batch_rows


def measure(city_file, addresses: list[str], worker_counts=WORKER_COUNTS, fill_addresses: list[str] | None = None,
            asn_file=None) -> dict:
    """The figure is taken after single lookups that fill the record caches (FILL_PER_WORKER of
    `fill_addresses` per worker, each once); the same workers are then measured again after batch
    traffic, whose large responses leave the Python heap bigger. With `asn_file`, both databases
    are loaded (the budget is then TARGET_MB_PER_EXTRA_WORKER_WITH_ASN)."""
    # No recycling while the caches fill: a recycled worker would start with an empty cache.
    env = {"GEOIP_MAX_REQUESTS": "10000000"}
    if asn_file is not None:
        env["GEOIP_ASN_DB"] = str(asn_file.path)
    target = TARGET_MB_PER_EXTRA_WORKER_WITH_ASN if asn_file is not None else TARGET_MB_PER_EXTRA_WORKER
    rows, batch_rows = _rows(city_file, addresses, worker_counts, env,
                             with_batches=True, fill_addresses=fill_addresses or addresses)
    increments = _increments(rows)
    worst = max((step["mb_per_extra_worker"] for step in increments), default=0.0)
    shared = all(row["distinct_city_files"] == 1 for row in rows)
    full = all(row["record_caches"]["full"] for row in rows)
    results = {
        "city_file": city_file.label,
        "city_file_mb": city_file.size_mb,
        "asn_file": asn_file.label if asn_file is not None else None,
        "asn_file_mb": asn_file.size_mb if asn_file is not None else None,
        "rows": rows,
        "increments": increments,
        "worst_mb_per_extra_worker": worst,
        "after_batches": {"rows": batch_rows, "increments": _increments(batch_rows)},
        "ratio": round(worst / target, 2),
        "target": f"<= {target:g} MB PSS per extra worker" + (" (City + ASN)" if asn_file is not None else ""),
        "city_map_shared": shared,
        "record_caches_full": full,
        # a figure from workers with caches still filling would understate the steady state
        "met": worst <= target and shared and full,
    }
    return results
