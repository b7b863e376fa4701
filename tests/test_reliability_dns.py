"""Fault under load: the DNS server stops answering.

The real stack (Nginx -> uWSGI with docker/uwsgi.ini's default workers and threads) resolves
through a real DNS server on 127.0.0.1 that is switched to silence (it reads queries and never
answers). Requirements of issue 8, asserted:

- every domain lookup then fails with 504 DNS_TIMEOUT, and none waits for a second budget: the
  budget counts from the request's arrival and a name still queued for a resolver thread when it
  runs out is not asked (tests/test_dns_deadline.py asserts that structure with an injected
  clock). The durations measured here, in Nginx's log and at the client, are recorded; they are
  checked only against bounds a shared 2-core machine cannot miss without a real defect
  (twice the budget);
- with 50 such slow lookups in flight at once, IP lookups are not starved (p99 far below one
  DNS_TIMEOUT; the figure is recorded): slow DNS must not take every request slot. The
  configuration that makes this hold is uWSGI threads (docker/uwsgi.ini): a thread waiting on a
  DNS socket releases the GIL, so a worker with more threads than the slow lookups in flight
  still has free threads for IP lookups.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from tests.support.city_fixtures import write_city_db
from tests.support.dns_server import LocalDnsServer
from tests.support.figures import record
from tests.support.load import Request, SteadyLoad
from tests.support.native_stack import NativeStack

pytestmark = pytest.mark.slow

DNS_TIMEOUT = 1.0
SLOW_IN_FLIGHT = 50
# A starved IP lookup would wait for a DNS lookup's thread: about DNS_TIMEOUT. Measured p99 on a
# quiet machine is about 10 ms, 16 to 47 ms on a busy one.
IP_P99_BOUND = DNS_TIMEOUT / 4
# No answer may take a second budget (the defect this guards against); the measured slowest is
# about 1.1 s.
DOMAIN_BOUND = 2 * DNS_TIMEOUT
# docker/uwsgi.ini: processes = one per core (2 here and in CI), threads = GEOIP_THREADS or its default.
WORKERS = 2


def uwsgi_default_threads() -> int:
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "docker" / "uwsgi.ini").read_text()
    block = text.split("if-not-env = GEOIP_THREADS", 1)[1]
    return int(block.split("threads =", 1)[1].split()[0])


THREADS = int(os.environ.get("RELIABILITY_DNS_THREADS") or uwsgi_default_threads())  # to try other values


IP_MIX = [Request("/api/v1/lookup/81.2.69.160", "ip"), Request("/api/v1/lookup/2a02:d5c0::10", "ip"),
          Request("/api/v1/lookup/9.9.9.9", "ip"), Request("/api/v1/lookup/2.2.3.4", "ip")]


@pytest.fixture
def dns():
    with LocalDnsServer() as server:
        yield server


@pytest.fixture
def stack(tmp_path, dns):
    with NativeStack(write_city_db(tmp_path / "city.mmdb"), workers=WORKERS, threads=THREADS,
                     env={"DNS_NAMESERVERS": dns.nameserver, "DNS_TIMEOUT": str(DNS_TIMEOUT),
                          "GEOIP_RATE_LIMIT": "0"}) as running:
        for _ in range(20):  # every worker has loaded the app and its map
            running._status("/api/v1/lookup/81.2.69.160")
        yield running


def slow_requests(tag: str):
    """Distinct names, so no answer can come from a cache."""
    return [Request(f"/api/v1/lookup/n{index}-{tag}.silent.test.example", "domain") for index in range(20_000)]


def served_durations(stack, uri_part: str) -> list[float]:
    """$request_time of the 504s whose URI contains `uri_part`, from Nginx's JSON access log."""
    durations = []
    for line in stack.log().splitlines():
        if line.startswith('{"time"') and uri_part in line:
            entry = json.loads(line)
            if entry["status"] == 504:
                durations.append(float(entry["duration"]))
    return durations


def test_silent_dns_gives_504_within_the_budget_while_ip_lookups_stay_fast(stack, dns):
    assert stack._status("/api/v1/lookup/london.test.example") == 200  # DNS works before the fault
    dns.resolver.silent = True

    with SteadyLoad(stack.port, slow_requests("a"), threads=SLOW_IN_FLIGHT, keep_bodies="errors",
                    timeout=30, max_seconds=90) as slow, \
            SteadyLoad(stack.port, IP_MIX, threads=2, timeout=30, max_seconds=90) as fast:
        # Measure only once every slow client has one request in flight.
        time.sleep(DNS_TIMEOUT * 1.5)
        window_start = fast.mark("50 in flight")
        time.sleep(8)
        window_end = fast.mark("end")
        queries_seen = len(dns.resolver.queries)
    ip_report, slow_report = fast.report, slow.report
    dns.resolver.silent = False

    slow_samples = slow_report.select(since=window_start - DNS_TIMEOUT * 1.5)
    statuses = slow_report.statuses()
    codes = {json.loads(s.body)["error"]["code"] for s in slow_samples if s.body}
    slowest = max((s.latency for s in slow_samples), default=None)
    served = served_durations(stack, ".silent.test.example")
    ip_window = ip_report.select(since=window_start, until=window_end)
    p99 = ip_report.latency(0.99, since=window_start, until=window_end)
    record("dns_silent", dns_timeout_s=DNS_TIMEOUT, workers=WORKERS, threads=THREADS,
           slow_in_flight=SLOW_IN_FLIGHT, domain=slow_report.summary(),
           domain_slowest_s=None if slowest is None else round(slowest, 3),
           domain_slowest_served_s=max(served, default=None),
           ip_during=ip_report.summary(since=window_start, until=window_end), dns_queries_seen=queries_seen)

    assert slow_samples and set(statuses) == {504}, statuses
    assert codes == {"DNS_TIMEOUT"}
    # The bound is on the service: Nginx's own request time (request read to response sent). The
    # client-side figure adds this test's 52 client threads waiting for the GIL on a 2-core box
    # shared with the server; it is reported, and only checked against a looser sanity bound.
    assert served and len(served) >= len(slow_samples) * 0.9
    assert max(served) < DOMAIN_BOUND, f"a domain lookup took {max(served):.2f} s in Nginx"
    assert slowest < DOMAIN_BOUND + 1.0, f"a domain lookup took {slowest:.2f} s at the client"
    assert len(ip_window) > 50 and set(ip_report.statuses()) == {200}, ip_report.statuses()
    assert p99 < IP_P99_BOUND, f"IP lookups p99 {p99 * 1000:.0f} ms with {SLOW_IN_FLIGHT} slow DNS lookups in flight"


def test_dns_answers_again_after_the_outage(stack, dns):
    dns.resolver.silent = True
    with SteadyLoad(stack.port, slow_requests("b")[:200], threads=4, timeout=30, max_seconds=30) as load:
        time.sleep(DNS_TIMEOUT * 2)
        dns.resolver.silent = False
        back = load.mark("back")
        time.sleep(DNS_TIMEOUT + 0.5)
    assert stack._status("/api/v1/lookup/london.test.example") == 200
    # Every request sent after DNS came back got the real answer (NXDOMAIN for these names).
    after = load.report.select(since=back + 0.01)
    assert after and {s.status for s in after} == {404}
