"""/metrics scraped by a real Prometheus server (Debian's `prometheus`) from the native stack:
counts add up across uWSGI workers exactly, survive a killed worker without going backwards,
and the gauges and the latency histogram are there. Also: who may read /metrics.
"""
from __future__ import annotations

import http.client
import os
import signal
import time
from pathlib import Path

import maxminddb
import pytest

from tests.support import prometheus
from tests.support.load import Request, SteadyLoad
from tests.support.native_stack import NativeStack, http_request

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not prometheus.available(), reason="Debian's prometheus is not installed")]

SHARED_CITY = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "maxmind" / "GeoIP2-City-Test.mmdb"
IPS = ["81.2.69.142", "81.2.69.160", "2.125.160.216", "89.160.20.112", "216.160.83.56", "2a02:d5c0::10"]
LOOKUPS = 240


def get(stack, path: str, source: str = "127.0.0.1") -> tuple[int, bytes]:
    status, _, body = http_request(stack.port, path, source=source)
    return status, body


@pytest.fixture(scope="module")
def stack():
    if not SHARED_CITY.is_file():
        pytest.skip("../shared/testdata/maxmind is absent")
    with NativeStack(SHARED_CITY, workers=2, threads=4, env={"GEOIP_RATE_LIMIT": "0"}) as running:
        yield running


@pytest.fixture(scope="module")
def server(stack):
    with prometheus.PrometheusServer(target=f"127.0.0.1:{stack.port}") as running:
        running.wait_for_scrape()
        yield running


def total(server, expression: str) -> float:
    return server.value(f"sum({expression})") or 0.0


def test_lookups_are_counted_exactly_across_workers(stack, server):
    lookups = 'geoip_lookups_total{kind="ip",outcome="ok"}'
    requests = 'geoip_http_requests_total{route="lookup",status="200"}'
    latency = 'geoip_http_request_duration_seconds_count{route="lookup"}'
    server.wait_for_scrape()
    before = {name: total(server, name) for name in (lookups, requests, latency)}
    for index in range(LOOKUPS):
        status, body = get(stack, f"/api/v1/lookup/{IPS[index % len(IPS)]}")
        assert status == 200, body
    for name in (lookups, requests, latency):
        server.wait_for_value(f"sum({name})", before[name] + LOOKUPS)
    # Both workers served some of them (each counts into its own file, /metrics adds them up).
    files = {entry.name for entry in (stack.run_dir / "metrics" / "lookups").iterdir()}
    for pid in stack.worker_pids():
        assert f"counter_{pid}.db" in files, (pid, sorted(files))
    # The histogram is recorded in buckets from 100 µs up, and a quantile can be taken from it.
    assert total(server, 'geoip_http_request_duration_seconds_bucket{route="lookup",le="10.0"}') >= LOOKUPS
    buckets = server.query('geoip_http_request_duration_seconds_bucket{route="lookup"}')
    assert {series["metric"]["le"] for series in buckets} >= {"0.0001", "0.001", "0.01", "0.1", "1.0", "10.0", "+Inf"}
    p99 = server.value('histogram_quantile(0.99, sum by (le) ('
                       'geoip_http_request_duration_seconds_bucket{route="lookup"}))')
    assert p99 is not None and 0 < p99 <= 10


def test_both_uwsgi_pools_are_counted(stack, server):
    """Batches go to the names pool (docker/uwsgi.ini [names]), IP lookups to the lookups pool:
    one scrape (answered by a lookups-pool worker) adds up both pools' files."""
    items = 'geoip_lookups_total{kind="batch_ip",outcome="ok"}'
    batches = 'geoip_http_requests_total{route="batch",status="200"}'
    server.wait_for_scrape()
    before = {name: total(server, name) for name in (items, batches)}
    for _ in range(10):
        status, _, body = http_request(stack.port, "/api/v1/lookup", method="POST", body=b'{"targets": %s}' % (
            str(IPS[:5]).replace("'", '"').encode()), headers={"Content-Type": "application/json"})
        assert status == 200, body
    server.wait_for_value(f"sum({items})", before[items] + 50)
    server.wait_for_value(f"sum({batches})", before[batches] + 10)
    names_files = {entry.name for entry in (stack.run_dir / "metrics" / "names").iterdir()}
    assert any(f"counter_{pid}.db" == name for pid in stack.name_worker_pids() for name in names_files), names_files


def test_errors_are_counted_by_code_and_never_by_address(stack, server):
    reserved = 'geoip_lookups_total{kind="ip",outcome="IP_ADDRESS_RESERVED"}'
    server.wait_for_scrape()
    before = total(server, reserved)
    for _ in range(7):
        assert get(stack, "/api/v1/lookup/10.1.2.3")[0] == 422
    server.wait_for_value(f"sum({reserved})", before + 7)  # once each, though the fast path tried first
    assert total(server, 'geoip_http_requests_total{route="lookup",status="422"}') >= 7
    for series in server.query('{__name__=~"geoip_.*"}'):
        for value in series["metric"].values():
            assert "10.1.2.3" not in value and "81.2.69" not in value, series["metric"]


def test_database_and_backend_gauges(stack, server):
    with maxminddb.open_database(str(SHARED_CITY)) as reader:
        build_epoch = reader.metadata().build_epoch
    server.wait_for_scrape()
    assert server.value('geoip_database_build_timestamp_seconds{database="city"}') == build_epoch
    age = server.value('geoip_database_age_seconds{database="city"}')
    assert abs(age - (time.time() - build_epoch)) < 120
    assert server.value('geoip_database_loaded{database="city"}') == 1
    assert server.value('geoip_timezone_backend_up{backend="embedded"}') == 1
    assert server.value('sum(geoip_cache_hits_total{cache="record"})') > 0
    assert server.value('sum(geoip_cache_misses_total{cache="record"})') > 0


def test_a_killed_worker_never_makes_a_counter_go_backwards(stack, server):
    expression = 'sum(geoip_http_requests_total{route="lookup"})'
    started = time.time()
    with SteadyLoad(stack.port, [Request(f"/api/v1/lookup/{ip}") for ip in IPS], threads=4,
                    max_seconds=60) as load:
        load.wait_for_requests(300)
        server.wait_for_scrape()  # 1: before the kill
        before_kill = total(server, 'geoip_http_requests_total{route="lookup",status="200"}')
        victim = stack.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while victim in stack.worker_pids() or len(stack.worker_pids()) < stack.workers:
            assert time.monotonic() < deadline, "the worker was not replaced"
            time.sleep(0.1)
        server.wait_for_scrape()  # 2: with the replacement worker
        load.wait_for_requests(len(load.snapshot().samples) + 300)
        server.wait_for_scrape()  # 3: after it has counted more
    ended = time.time()
    # Three distinct scrapes a scrape interval apart lie inside [started, ended], so the window spans
    # at least two intervals and holds at least three steps, however fast the load ran.
    values = server.range(expression, started, ended)
    assert len(values) >= 3, values
    assert all(later >= earlier for earlier, later in zip(values, values[1:])), values
    assert server.value(f"resets({expression}[5m:1s])") == 0  # a subquery: resets() of the sum
    # Counting went on past the kill, from what the killed worker had counted. (A SIGKILLed worker
    # loses the counts it had not yet added to its file: at most its last second, docs/metrics.md.)
    assert total(server, 'geoip_http_requests_total{route="lookup",status="200"}') > before_kill


def test_metrics_only_for_allowed_addresses(stack):
    status, body = get(stack, "/metrics")
    assert status == 200 and b"geoip_http_requests_total" in body
    assert get(stack, "/metrics", source="127.0.0.2")[0] == 200  # METRICS_ALLOW's default: loopback
    # From an address outside METRICS_ALLOW, forwarded by a trusted proxy: the same 404 as any unknown path.
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    connection.request("GET", "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 404 and b'"NOT_FOUND"' in body and b"geoip_" not in body
