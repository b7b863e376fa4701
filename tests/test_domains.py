"""Domain lookups against a real DNS server on 127.0.0.1."""

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


def test_unanswered_query_times_out_within_budget(make_app, dns_server):
    """The budget, not dnspython's 5 s lifetime, ends the wait: an answer that comes 3 s late is
    never used. The budget's arithmetic is tests/test_dns_deadline.py's, with an injected clock."""
    client = make_app(dns_timeout=0.5).test_client()
    for name in ("slow.test.example", "late.test.example"):
        status, doc = get(client, f"/api/v1/lookup/{name}")
        assert status == 504 and doc["error"]["code"] == "DNS_TIMEOUT", name
    assert {q for q in dns_server.resolver.queries if q[0] == "late.test.example"} == {
        ("late.test.example", "A"), ("late.test.example", "AAAA")}


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
    """The server holds each query of the late name 3 s before answering: the A and AAAA queries
    are held together only when they were sent together (one after the other, never). The budget
    is far above 3 s, so both answers come back however slow the machine."""
    client = make_app(dns_timeout=15.0).test_client()
    status, doc = get(client, "/api/v1/lookup/late-dual.test.example")
    assert status == 200, doc
    assert [r["ip"] for r in doc["results"]] == ["81.2.69.160", "2001:218::1"]
    assert dns_server.resolver.most_late_at_once["late-dual.test.example"] == 2
