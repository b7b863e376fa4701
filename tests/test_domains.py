"""Domain lookups against a real DNS server on 127.0.0.1."""
import time

import pytest


def get(client, path):
    response = client.get(path)
    return response.status_code, response.get_json()


def test_every_address_gets_its_own_result(client):
    status, doc = get(client, "/api/v1/lookup/paris.test.example")
    assert status == 200 and doc["kind"] == "domain" and doc["query"] == "paris.test.example"
    assert doc["canonical_name"] == "paris.test.example"
    assert [r["ip"] for r in doc["results"]] == ["2.2.3.4", "2a02:d5c0::10"]
    assert [r["city"]["name"] for r in doc["results"]] == ["Paris", "Madrid"]
    assert doc["addresses_withheld"] == 0


def test_cname_chain_gives_canonical_name(client):
    _, doc = get(client, "/api/v1/lookup/www.alias.test.example")
    assert doc["canonical_name"] == "edge.cdn.test.example"
    assert {r["ip"] for r in doc["results"]} == {"81.2.69.170", "2001:218::2"}


def test_idna_name(client):
    status, doc = get(client, "/api/v1/lookup/bücher.example")
    assert status == 200 and doc["query"] == "bücher.example" and doc["results"][0]["ip"] == "81.2.69.190"


@pytest.mark.parametrize("name", ["nope.test.example", "noaddr.test.example"])
def test_unknown_or_addressless_domain_is_404(client, name):
    status, doc = get(client, f"/api/v1/lookup/{name}")
    assert status == 404 and doc["error"]["code"] == "DOMAIN_NOT_FOUND"


def test_internal_addresses_are_never_revealed(client):
    response = client.get("/api/v1/lookup/internal.test.example")
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "IP_ADDRESS_RESERVED"
    body = response.get_data(as_text=True)
    assert "10.1.2.3" not in body and "fd00" not in body


def test_mixed_public_and_internal_addresses(client):
    status, doc = get(client, "/api/v1/lookup/mixed.test.example")
    assert status == 200 and [r["ip"] for r in doc["results"]] == ["81.2.69.180"]
    assert doc["addresses_withheld"] == 1 and "10.9.9.9" not in str(doc)


def test_address_missing_from_database_is_reported_per_result(client):
    status, doc = get(client, "/api/v1/lookup/unlocated.test.example")
    assert status == 200 and doc["results"] == [
        {"ip": "8.8.8.8", "error": {"code": "IP_ADDRESS_NOT_FOUND", "message": "The address is not in the City database."}}]


def test_unanswered_query_times_out_within_budget(make_app):
    # dnspython alone would wait 5 s (its default lifetime); the budget is 0.5 s. The bound is
    # generous on purpose: the budget's exact arithmetic is tests/test_dns_deadline.py's, with
    # an injected clock.
    client = make_app(dns_timeout=0.5).test_client()
    started = time.monotonic()
    status, doc = get(client, "/api/v1/lookup/slow.test.example")
    elapsed = time.monotonic() - started
    assert status == 504 and doc["error"]["code"] == "DNS_TIMEOUT"
    assert elapsed < 4.0


def test_answers_are_cached_per_worker_for_their_ttl(client, dns_server):
    get(client, "/api/v1/lookup/dual.test.example")
    before = len(dns_server.resolver.queries)
    for _ in range(5):
        assert get(client, "/api/v1/lookup/dual.test.example")[0] == 200
    assert len(dns_server.resolver.queries) == before


def test_zero_ttl_answer_is_asked_again(make_app, dns_server):
    dns_server.resolver.zone["shortlived.test.example"] = [("A", "81.2.69.165", 0)]
    client = make_app().test_client()
    get(client, "/api/v1/lookup/shortlived.test.example")
    before = len(dns_server.resolver.queries)
    get(client, "/api/v1/lookup/shortlived.test.example")
    assert len(dns_server.resolver.queries) > before


def test_a_and_aaaa_are_asked_concurrently(make_app, dns_server):
    """Two queries to a silent server cost one timeout, not two: both are sent at once. Asked one
    after the other, the second would go out a whole budget (2 s) after the first, or never."""
    client = make_app(dns_timeout=2.0).test_client()
    first = len(dns_server.resolver.queries)
    assert get(client, "/api/v1/lookup/slow.test.example")[0] == 504
    asked = [(at, q[1]) for at, q in zip(dns_server.resolver.received_at[first:], dns_server.resolver.queries[first:])
             if q[0] == "slow.test.example"]
    sent = {rdtype: min(at for at, kind in asked if kind == rdtype) for rdtype in ("A", "AAAA")
            if any(kind == rdtype for _, kind in asked)}
    assert set(sent) == {"A", "AAAA"}, asked
    assert abs(sent["A"] - sent["AAAA"]) < 1.0
