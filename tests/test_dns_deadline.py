"""DNS_TIMEOUT bounds the whole answer, counted from the request's arrival.

With an injected clock the tests move time instead of waiting: a request that waited (for a
thread, the GIL, anything) until its budget was spent gets DNS_TIMEOUT and its name is never
asked. Against a silent local DNS server with a tiny resolver pool, names that cannot get a pool
thread before their deadline are not asked either (they do not start late with a budget of their
own): what the server receives is the structure asserted, not a duration.
"""
from __future__ import annotations

import threading
import time

import pytest

from app import create_app
from app.config import Config
from app.deadline import Deadline
from app.errors import DnsTimeout
from app.resolver import DnsResolver
from app.services import Services
from tests.conftest import make_config
from tests.support.dns_server import LocalDnsServer


class ManualClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def nameservers(server):
    return Config.from_env({"DNS_NAMESERVERS": server.nameserver}).dns_nameservers


def test_deadline_arithmetic():
    clock = ManualClock()
    deadline = Deadline.after(2.0, clock)
    assert deadline.remaining() == 2.0 and not deadline.expired()
    assert deadline.at_most(0.5).remaining() == 0.5 and deadline.at_most(5).remaining() == 2.0
    clock.advance(2.5)
    assert deadline.remaining() == 0.0 and deadline.expired()
    assert Deadline.after(1.0, clock, start=clock() - 1.0).expired()


@pytest.fixture
def app_with_clock(city_db, dns_server, tmp_path):
    """An app whose resolver (and so its arrival stamp) reads a clock the test moves."""
    clock = ManualClock()
    config = make_config(city_db_path=str(city_db), city_db_copy_dir=str(tmp_path / "copies"),
                         dns_nameservers=nameservers(dns_server), dns_timeout=1.0)
    services = Services(config)
    services.resolver.clock = clock
    app = create_app(config, services=services)
    waited = {"seconds": 0.0}
    # What happens between arrival and the lookup (a queue, the GIL, a slow hook) takes this long.
    app.before_request(lambda: clock.advance(waited["seconds"]))
    return app, waited


def test_a_request_that_waited_past_its_budget_gets_dns_timeout_unasked(app_with_clock, dns_server):
    app, waited = app_with_clock
    client = app.test_client()
    waited["seconds"] = 0.4
    assert client.get("/api/v1/lookup/london.test.example").status_code == 200  # within budget: asked
    asked = len(dns_server.resolver.queries)
    waited["seconds"] = 1.0  # the whole DNS_TIMEOUT went by before the lookup could start
    for path in ("/api/v1/lookup/paris.test.example", "/paris.test.example", "/?q=paris.test.example"):
        response = client.get(path)
        assert response.status_code == 504, path
        if path.startswith("/api"):
            assert response.get_json()["error"]["code"] == "DNS_TIMEOUT"
    response = client.post("/api/v1/lookup", json={"targets": ["paris.test.example", "81.2.69.160"]})
    waited["seconds"] = 2.0  # the batch's budget (2 x DNS_TIMEOUT) too
    response = client.post("/api/v1/lookup", json={"targets": ["paris.test.example", "81.2.69.160"]})
    items = response.get_json()["results"]
    assert items[0]["error"]["code"] == "DNS_TIMEOUT" and items[1]["results"][0]["city"]["name"] == "London"
    assert len(dns_server.resolver.queries) == asked + 2  # only the first batch's paris (A + AAAA)


def test_the_resolver_counts_from_the_given_start(dns_server):
    clock = ManualClock()
    resolver = DnsResolver(nameservers(dns_server), timeout=1.0, clock=clock)
    arrived = clock()
    clock.advance(1.0)
    before = len(dns_server.resolver.queries)
    with pytest.raises(DnsTimeout):
        resolver.resolve_addresses("london.test.example", resolver.deadline(start=arrived))
    assert len(dns_server.resolver.queries) == before
    # A later deadline never extends the resolver's own budget of DNS_TIMEOUT.
    assert resolver.deadline(start=arrived).at_most(5).at == arrived + 1.0


def test_names_queued_behind_a_full_pool_are_not_asked_after_their_deadline():
    pool_size, names = 2, 6
    with LocalDnsServer() as silent:
        silent.resolver.silent = True
        resolver = DnsResolver(nameservers(silent), timeout=0.5, pool_size=pool_size)
        deadline = resolver.deadline()  # they all arrived together
        start = threading.Barrier(names)
        outcomes = []

        def ask(index):
            start.wait()
            try:
                resolver.resolve_addresses(f"n{index}.silent.test.example", deadline)
                outcomes.append("answered")
            except DnsTimeout:
                outcomes.append("DNS_TIMEOUT")

        threads = [threading.Thread(target=ask, args=(index,)) for index in range(names)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        time.sleep(1.0)  # any query that would start late would reach the server by now
        assert outcomes == ["DNS_TIMEOUT"] * names
        # Only the queries that got a pool thread before the deadline were sent; the other
        # names waited for a thread, ran out of time and were never asked.
        assert 1 <= len(silent.resolver.queries) <= pool_size, silent.resolver.queries


def test_pool_size_is_a_setting():
    assert Config.from_env({}).dns_pool_size == 32
    assert Config.from_env({"DNS_POOL_SIZE": "4"}).dns_pool_size == 4
    for bad in ("0", "-1", "many", "2.5", "100000"):
        with pytest.raises(ValueError, match="DNS_POOL_SIZE"):
            Config.from_env({"DNS_POOL_SIZE": bad})
    services = Services(make_config(dns_pool_size=3))
    assert services.resolver.pool_size == 3
