"""app/metrics on its own: the per-worker tally adds up to what prometheus_client would have
counted directly, /metrics access by address, route names bounded."""
from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from app.metrics import LATENCY_BUCKETS, Metrics
from app.metrics.middleware import route_of

VALUES = [0.00005, 0.0001, 0.00011, 0.0009, 0.001, 0.02, 0.7, 3.0, 10.0, 12.0]


def samples(text: bytes, name: str) -> dict:
    found = {}
    for line in text.decode().splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            found[key.replace(name, "", 1)] = float(value)
    return found


def test_tallied_histogram_matches_prometheus_clients_own():
    metrics = Metrics()
    tallied = metrics.histogram(metrics.http_latency, "lookup")
    for value in VALUES:
        tallied.observe(value)
    metrics.flush()
    reference = Histogram("geoip_http_request_duration_seconds", "x", ["route"], buckets=LATENCY_BUCKETS,
                          registry=CollectorRegistry())
    registry = CollectorRegistry()
    registry.register(reference)
    for value in VALUES:
        reference.labels("lookup").observe(value)
    ours = samples(metrics.render(), "geoip_http_request_duration_seconds")
    theirs = samples(generate_latest(registry), "geoip_http_request_duration_seconds")
    assert ours == theirs and ours['_count{route="lookup"}'] == len(VALUES)


def test_tallied_counter_loses_nothing_across_threads():
    metrics = Metrics()
    counter = metrics.counter(metrics.lookups, "ip", "ok")

    def count():
        for _ in range(20_000):
            counter.inc()

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    metrics.flush()
    assert samples(metrics.render(), "geoip_lookups_total")['{kind="ip",outcome="ok"}'] == 160_000


def test_routes_are_names_never_paths():
    assert route_of("/api/v1/lookup/81.2.69.160") == "lookup"
    assert route_of("/api/v1/lookup/me") == "lookup_me"
    assert route_of("/api/v1/lookup") == "batch"
    assert route_of("/geoip/v2.1/city/1.2.3.4") == "geoip_city"
    assert route_of("/8.8.8.8") == "legacy_lookup"
    assert route_of("/a/b/c") == "other"
    assert route_of("/metrics") == "metrics"
