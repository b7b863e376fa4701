"""Prometheus metrics: what they are (declared once, here) and how /metrics renders them.

Under uWSGI every worker counts into prometheus_client's multiprocess files (docker/uwsgi.ini sets
PROMETHEUS_MULTIPROC_DIR, one directory per uWSGI pool under GEOIP_METRICS_ROOT; app/preload.py
empties the pool's own when its master starts), and whichever worker serves /metrics sums every
worker's files of both pools, those of workers that have exited included, so a replaced worker
never makes a counter go backwards. Without that directory (the dev server,
tests) the counts are this process's own.

Counters and histograms are counted where things happen (app/metrics/instruments.py,
middleware.py), into a per-worker tally (a dict update under a lock: a tenth of what a write to
the shared files costs, which was a third of a lookup's time); the worker adds its tally to its
files every second (WorkerCounters), when it exits gracefully, and before it renders a scrape.
So a SIGKILLed worker loses at most its last second of counts; nothing ever goes backwards. Gauges are read live by the worker serving the scrape (collectors.py): database
builds and ages, the time-zone backend, the updater's state; they are the same in every worker,
so nothing about them needs adding up. Label values are bounded: routes are names, never paths,
and no label ever holds a queried address or name.
"""
from __future__ import annotations

import bisect
import glob
import os
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client import multiprocess

disable_created_metrics()  # no *_created series: counter resets are what Prometheus goes by

# 100 µs to 10 s: an IP lookup is a fraction of a millisecond, a domain waits up to DNS_TIMEOUT,
# a batch of 1,000 names up to twice that.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0)
TZ_LATENCY_BUCKETS = LATENCY_BUCKETS[:-3]  # up to 1 s; PostGIS statements time out at 250 ms
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class PoolsCollector:
    """The multiprocess files of every directory under `root` (one per uWSGI pool), merged as
    prometheus_client's MultiProcessCollector merges one directory's."""

    def __init__(self, root: str):
        self.root = root

    def collect(self):
        files = glob.glob(os.path.join(glob.escape(self.root), "*", "*.db"))
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


class Metrics:
    """The metric objects of one process. `render()` is the /metrics body."""

    def __init__(self, live_collectors=()):
        self.multiprocess = multiprocess_dir() is not None
        registry = None  # registered into a fresh registry by render(), never a global one
        self.http_requests = Counter(
            "geoip_http_requests_total", "HTTP requests answered by the app, by route and status.",
            ["route", "status"], registry=registry)
        self.http_latency = Histogram(
            "geoip_http_request_duration_seconds", "Time the app took to answer, by route.",
            ["route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.lookups = Counter(
            "geoip_lookups_total", "Lookups by kind (ip, domain, batch_ip, batch_domain) and outcome "
            "(ok or the error code).", ["kind", "outcome"], registry=registry)
        self.cache_hits = Counter(
            "geoip_cache_hits_total", "Cache hits by cache (record, coordinate, dns).", ["cache"], registry=registry)
        self.cache_misses = Counter(
            "geoip_cache_misses_total", "Cache misses by cache (record, coordinate, dns).", ["cache"],
            registry=registry)
        self.database_swaps = Counter(
            "geoip_database_swaps_total", "New database versions loaded, counted per worker (each worker "
            "maps each version).", ["database"], registry=registry)
        self.database_load_failures = Counter(
            "geoip_database_load_failures_total", "Database files that could not be opened, per worker; the "
            "previous version kept serving.", ["database"], registry=registry)
        self.dns_resolutions = Counter(
            "geoip_dns_resolutions_total", "Name resolutions (A and AAAA) by outcome (ok or the error code).",
            ["outcome"], registry=registry)
        self.timezone_queries = Histogram(
            "geoip_timezone_query_duration_seconds", "Time-zone index queries by backend and outcome "
            "(ok, unavailable).", ["backend", "outcome"], buckets=TZ_LATENCY_BUCKETS, registry=registry)
        self._own = [self.http_requests, self.http_latency, self.lookups, self.cache_hits, self.cache_misses,
                     self.database_swaps, self.database_load_failures, self.dns_resolutions,
                     self.timezone_queries]
        self._live_collectors = list(live_collectors)
        self._tallies: dict = {}
        self._tally_lock = threading.Lock()

    def counter(self, metric, *labels) -> "TalliedCounter":
        """A counter child whose increments wait in this process's tally until flush()."""
        return self._tallied(metric, labels, TalliedCounter)

    def histogram(self, metric, *labels) -> "TalliedHistogram":
        return self._tallied(metric, labels, TalliedHistogram)

    def _tallied(self, metric, labels, kind):
        key = (metric, labels)
        found = self._tallies.get(key)
        if found is None:
            with self._tally_lock:
                found = self._tallies.get(key)
                if found is None:
                    found = self._tallies[key] = kind(metric.labels(*labels), self._tally_lock)
        return found

    def flush(self) -> None:
        """Add every tallied count to the shared counters (the multiprocess files)."""
        for tallied in list(self._tallies.values()):
            tallied.flush()

    def add_live_collector(self, collector) -> None:
        self._live_collectors.append(collector)

    def render(self) -> bytes:
        registry = CollectorRegistry()
        root = os.environ.get("GEOIP_METRICS_ROOT")
        if self.multiprocess and root:
            registry.register(PoolsCollector(root))  # every worker's files, exited ones included
        elif self.multiprocess:
            multiprocess.MultiProcessCollector(registry)
        else:
            for collector in self._own:
                registry.register(collector)
        for collector in self._live_collectors:
            registry.register(collector)
        return generate_latest(registry)


class TalliedCounter:
    __slots__ = ("child", "lock", "pending")

    def __init__(self, child, lock):
        self.child, self.lock, self.pending = child, lock, 0

    def inc(self, amount: float = 1) -> None:
        with self.lock:
            self.pending += amount

    def flush(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, 0
        if pending:
            self.child.inc(pending)


class TalliedHistogram:
    """Observations counted per bucket as prometheus_client's Histogram.observe() does (the first
    bucket whose upper bound holds the value), then added to its bucket and sum values in one go."""

    __slots__ = ("child", "lock", "bounds", "buckets", "sum")

    def __init__(self, child, lock):
        self.child, self.lock = child, lock
        self.bounds = list(child._upper_bounds)
        self.buckets = [0] * len(self.bounds)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        with self.lock:
            self.buckets[index] += 1
            self.sum += value

    def flush(self) -> None:
        with self.lock:
            buckets, total = self.buckets, self.sum
            self.buckets, self.sum = [0] * len(self.bounds), 0.0
        for index, count in enumerate(buckets):
            if count:
                self.child._buckets[index].inc(count)  # prometheus_client's per-bucket values (pinned version)
        if any(buckets):
            self.child._sum.inc(total)


def empty_multiprocess_dir() -> None:
    """Remove the files of a previous uWSGI run (its workers are gone; run in the master at start)."""
    directory = multiprocess_dir()
    if not directory:
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for entry in os.scandir(directory):
        if entry.name.endswith(".db"):
            os.unlink(entry.path)


def install(services):
    """Metrics for one worker's services: wraps what the lookups use now, and returns
    `wrap(wsgi_app)` for the outermost WSGI layer (also on the app as `wrap.worker_counters`)."""
    from .collectors import DatabaseCollector, TimezoneCollector, UpdaterCollector
    from .instruments import instrument
    from .middleware import MetricsMiddleware

    metrics = Metrics()
    counters = instrument(services, metrics)
    config = services.config
    for collector in (DatabaseCollector(services), TimezoneCollector(services),
                      UpdaterCollector([(kind, database.path) for kind, database, *_ in services.databases()])):
        metrics.add_live_collector(collector)

    def wrap(wsgi_app):
        return MetricsMiddleware(wsgi_app, metrics, config.metrics_allow, before_render=counters.flush)

    wrap.metrics = metrics
    wrap.worker_counters = counters
    return wrap
