"""Counting where things happen, without the adapters or the lookup service knowing about it.

`instrument(services, metrics)` puts thin wrappers around the lookup service (lookups by kind and
outcome), the DNS resolver (outcomes) and the time-zone backend (query latency), and starts a
`WorkerCounters` thread that adds the worker's tally, and what the adapters count in plain
attributes (cache hits and misses, database swaps and failed loads), to the shared counters
every second, and once more when the worker exits.
"""
from __future__ import annotations

import atexit
import threading
import time

from ..errors import GeoIPError

_IP_CHARACTERS = frozenset("0123456789abcdefABCDEF:.")
FLUSH_INTERVAL_SECONDS = 1.0


def target_kind(raw) -> str:
    """"ip" or "domain", as the target looks (bounded; the target itself is never a label)."""
    if isinstance(raw, str) and raw and _IP_CHARACTERS.issuperset(raw) and (":" in raw or "." in raw):
        return "ip"
    return "domain"


def _outcome(error: BaseException) -> str:
    return error.code if isinstance(error, GeoIPError) else GeoIPError.code


class _Children:
    """The tallied child of `metric` per label tuple (app/metrics: Metrics.counter/histogram)."""

    def __init__(self, metrics, metric, histogram: bool = False):
        self._make = metrics.histogram if histogram else metrics.counter
        self._metric = metric
        self._children: dict = {}

    def __call__(self, *labels):
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._make(self._metric, *labels)
        return child


class MeteredLookups:
    """The lookup service, counting each lookup (and each batch item) by kind and outcome."""

    def __init__(self, inner, count: _Children):
        self._inner = inner
        self._count = count

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def lookup(self, raw, *args, **kwargs):
        try:
            document = self._inner.lookup(raw, *args, **kwargs)
        except Exception as error:
            self._count(target_kind(raw), _outcome(error)).inc()
            raise
        self._count(document.get("kind") or target_kind(raw), "ok").inc()
        return document

    def first_try(self, raw, *args, **kwargs):
        """lookup() for a caller that hands every failure on to another path, which looks the
        target up again (the fast path hands errors to Flask): only a success is counted here."""
        document = self._inner.lookup(raw, *args, **kwargs)
        self._count(document.get("kind") or target_kind(raw), "ok").inc()
        return document

    def lookup_address(self, text, *args, **kwargs):
        try:
            document = self._inner.lookup_address(text, *args, **kwargs)
        except Exception as error:
            self._count("ip", _outcome(error)).inc()
            raise
        self._count("ip", "ok").inc()
        return document

    def maxmind_city(self, text, *args, **kwargs):
        try:
            found = self._inner.maxmind_city(text, *args, **kwargs)
        except Exception as error:
            self._count("ip", _outcome(error)).inc()
            raise
        self._count("ip", "ok").inc()
        return found

    def lookup_many(self, targets, *args, **kwargs):
        items = self._inner.lookup_many(targets, *args, **kwargs)
        for raw, item in zip(targets, items):
            error = item.get("error") if isinstance(item, dict) else None
            kind = "batch_" + (item.get("kind") if error is None and item.get("kind") else target_kind(raw))
            self._count(kind, error["code"] if error else "ok").inc()
        return items


class MeteredResolver:
    def __init__(self, inner, count: _Children):
        self._inner = inner
        self._count = count

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def resolve_addresses(self, name, *args, **kwargs):
        try:
            resolution = self._inner.resolve_addresses(name, *args, **kwargs)
        except Exception as error:
            self._count(_outcome(error)).inc()
            raise
        self._count("ok").inc()
        return resolution


class TimedTimezones:
    """A time-zone backend, timing every query it answers or fails."""

    def __init__(self, inner, observe: _Children):
        self._inner = inner
        self._observe = observe
        self._backend = getattr(inner, "backend", "unknown")

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def zone_at(self, latitude, longitude):
        started = time.perf_counter()
        try:
            answer = self._inner.zone_at(latitude, longitude)
        except Exception:
            self._observe(self._backend, "unavailable").observe(time.perf_counter() - started)
            raise
        self._observe(self._backend, "ok").observe(time.perf_counter() - started)
        return answer


class WorkerCounters:
    """Adds the growth of counts the adapters keep in attributes to the shared counters."""

    def __init__(self, services, metrics):
        self.services = services
        self.metrics = metrics
        self._last: dict = {}
        self._lock = threading.Lock()

    def readings(self) -> dict:
        metrics, lookup = self.metrics, self.services.lookup
        caches = [("record", lookup.city_cache.info()), ("asn_record", lookup.asn_cache.info()),
                  ("coordinate", lookup.zones.info())]
        resolver = getattr(self.services.resolver, "_resolver", None)
        statistics = getattr(getattr(resolver, "cache", None), "statistics", None)
        if statistics is not None:
            caches.append(("dns", {"hits": statistics.hits, "misses": statistics.misses}))
        readings = {}
        for name, info in caches:
            readings[(metrics.cache_hits, name)] = info["hits"]
            readings[(metrics.cache_misses, name)] = info["misses"]
        for kind, database, *_ in self.services.databases():
            readings[(metrics.database_swaps, kind)] = max(database.reloads - 1, 0)  # the first open is no swap
            readings[(metrics.database_load_failures, kind)] = database.load_failures
        return readings

    def flush(self) -> None:
        self.metrics.flush()
        with self._lock:
            for key, value in self.readings().items():
                last = self._last.get(key, 0)
                grown = value - last if value >= last else value  # smaller: the count started again
                if grown > 0:
                    counter, label = key
                    counter.labels(label).inc(grown)
                self._last[key] = value

    def start(self, interval: float = FLUSH_INTERVAL_SECONDS) -> threading.Thread:
        def run() -> None:
            while True:
                time.sleep(interval)
                self.flush()

        thread = threading.Thread(target=run, name="metrics-flush", daemon=True)
        thread.start()
        atexit.register(self.flush)  # uWSGI runs atexit hooks when a worker leaves gracefully
        return thread


def instrument(services, metrics) -> WorkerCounters:
    """Wrap the collaborators the lookups use; returns the worker's attribute counters (not started)."""
    lookup = services.lookup
    lookup.resolver = services.resolver = MeteredResolver(services.resolver, _Children(metrics, metrics.dns_resolutions))
    # The coordinate cache asks the backend on a miss: time those queries (before any lookup made
    # the cache take the backend's method).
    lookup.zones.timezones = TimedTimezones(lookup.zones.timezones,
                                            _Children(metrics, metrics.timezone_queries, histogram=True))
    services.lookup = MeteredLookups(lookup, _Children(metrics, metrics.lookups))
    return WorkerCounters(services, metrics)
