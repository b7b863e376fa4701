"""?hostname= and ?fields= on every lookup route, against the real local DNS server: forward-
confirmed PTR names, failures that never fail the lookup, the batch's shared budget, the TTL
cache, internal names never looked up; field selection with schema-valid responses."""
from __future__ import annotations

import pytest

from app.config import Config
from tests.support.dns_server import LocalDnsServer
from tests.support.openapi_check import validate_response

SILENT_PTR = "171.69.2.81.in-addr.arpa"


@pytest.fixture(scope="module")
def dns():
    with LocalDnsServer(silent_names=["slow.test.example", SILENT_PTR]) as server:
        yield server


@pytest.fixture
def client(make_app, dns, tmp_path):
    feed = tmp_path / "feed.csv"
    feed.write_text("10.8.0.0/16,NL,NL-NH,Amsterdam,\n")
    nameservers = Config.from_env({"DNS_NAMESERVERS": dns.nameserver}).dns_nameservers
    return make_app(dns_nameservers=nameservers, dns_timeout=0.5, overlay_sources=(str(feed),)).test_client()


def get(client, path, **params):
    response = client.get(path, query_string=params)
    return response.status_code, response.get_json()


def hostname_of(client, ip):
    status, doc = get(client, f"/api/v1/lookup/{ip}", hostname="1")
    assert status == 200
    validate_response("/api/v1/lookup/{target}", "get", 200, doc)
    return doc["results"][0]["hostname"]


def test_forward_confirmed_unconfirmed_and_missing(client):
    assert hostname_of(client, "81.2.69.160") == {"name": "london.test.example", "verified": True, "error": None}
    assert hostname_of(client, "81.2.69.161") == {"name": "liar.test.example", "verified": False, "error": None}
    assert hostname_of(client, "81.2.69.170") == {"name": None, "verified": False, "error": {
        "code": "PTR_NOT_FOUND", "message": "The address has no PTR record."}}
    assert hostname_of(client, "2001:218::1")["name"] == "dual.test.example"


def test_a_silent_server_never_fails_the_lookup(client):
    answer = hostname_of(client, "81.2.69.171")
    assert answer["name"] is None and answer["error"]["code"] == "DNS_TIMEOUT"


def test_off_by_default_and_bad_values(client):
    _, doc = get(client, "/api/v1/lookup/81.2.69.160")
    assert "hostname" not in doc["results"][0]
    _, doc = get(client, "/api/v1/lookup/81.2.69.160", hostname="0")
    assert "hostname" not in doc["results"][0]
    status, doc = get(client, "/api/v1/lookup/81.2.69.160", hostname="<b>maybe</b>")
    assert status == 400 and doc["error"]["code"] == "BAD_REQUEST" and "maybe" not in str(doc)


def test_answers_are_kept_for_their_ttl(client, dns):
    hostname_of(client, "81.2.69.161")
    asked = len(dns.resolver.queries)
    hostname_of(client, "81.2.69.161")
    assert len(dns.resolver.queries) == asked


def test_internal_names_are_never_looked_up(client, dns):
    asked = len(dns.resolver.queries)
    assert hostname_of(client, "10.8.1.2")["error"]["code"] == "HOSTNAME_WITHHELD"
    status, doc = get(client, "/api/v1/lookup/mixed.test.example", hostname="1")
    assert status == 200 and [r["ip"] for r in doc["results"]] == ["81.2.69.180"]
    assert not any(name.endswith(".10.in-addr.arpa") for name, _ in dns.resolver.queries[asked:])


def test_domains_and_me_and_the_legacy_route(client):
    _, doc = get(client, "/api/v1/lookup/dual.test.example", hostname="1")
    assert [r["hostname"]["name"] for r in doc["results"]] == ["liar.test.example", "dual.test.example"]
    response = client.get("/api/v1/lookup/me?hostname=1", headers={"X-Forwarded-For": "81.2.69.160"})
    assert response.get_json()["results"][0]["hostname"]["verified"] is True
    response = client.get("/81.2.69.160?hostname=1", headers={"Accept": "application/json"})
    assert response.get_json()["results"][0]["hostname"]["name"] == "london.test.example"


def test_batch_shares_one_budget(client, dns):
    targets = ["81.2.69.160", "81.2.69.171", "slow.test.example", "81.2.69.161", "nope"]
    response = client.post("/api/v1/lookup", json={"targets": targets, "hostname": True})
    assert response.status_code == 200
    items = response.get_json()["results"]
    validate_response("/api/v1/lookup", "post", 200, response.get_json())
    assert items[0]["results"][0]["hostname"]["verified"] is True
    assert items[1]["results"][0]["hostname"]["error"]["code"] == "DNS_TIMEOUT"
    assert items[2]["error"]["code"] == "DNS_TIMEOUT" and items[4]["error"]["code"] == "INVALID_TARGET"
    assert items[3]["results"][0]["hostname"]["name"] == "liar.test.example"
    bad = client.post("/api/v1/lookup", json={"targets": ["81.2.69.160"], "hostname": "perhaps"})
    assert bad.status_code == 400


FIELDS_ROUTES = ["/api/v1/lookup/81.2.69.160", "/81.2.69.160", "/api/v1/lookup/me"]


@pytest.mark.parametrize("path", FIELDS_ROUTES)
def test_fields_on_every_lookup_route(client, path):
    response = client.get(path, query_string={"fields": "city.name,country.iso_code,asn,overlay"},
                          headers={"Accept": "application/json", "X-Forwarded-For": "81.2.69.160"})
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["results"] == [{"ip": "81.2.69.160", "city": {"name": "London"}, "country": {"iso_code": "GB"},
                               "asn": None, "overlay": None}]
    validate_response("/api/v1/lookup/{target}", "get", 200, doc)


def test_fields_with_hostname_and_in_a_batch(client):
    _, doc = get(client, "/api/v1/lookup/81.2.69.160", hostname="1", fields="hostname.name")
    assert doc["results"] == [{"ip": "81.2.69.160", "hostname": {"name": "london.test.example"}}]
    response = client.post("/api/v1/lookup", json={"targets": ["81.2.69.160", "x"], "fields": ["country"]})
    body = response.get_json()
    assert body["results"][0]["results"][0] == {"ip": "81.2.69.160", "country": {
        "iso_code": "GB", "name": "United Kingdom", "is_in_european_union": False}}
    assert body["results"][1]["error"]["code"] == "INVALID_TARGET"
    validate_response("/api/v1/lookup", "post", 200, body)


@pytest.mark.parametrize("fields", ["nope", "city.name,<script>", "", "x" * 5000, "city.name.deeper"])
def test_invalid_fields_are_400_without_echo(client, fields):
    for path in ("/api/v1/lookup/81.2.69.160", "/api/v1/lookup/me", "/81.2.69.160"):
        response = client.get(path, query_string={"fields": fields}, headers={"Accept": "application/json"})
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == "INVALID_FIELDS" and "city.name" in error["message"]
        assert "<script>" not in response.get_data(as_text=True) and "nope" not in error["message"]
    response = client.post("/api/v1/lookup", json={"targets": ["81.2.69.160"], "fields": [fields, 3]})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "INVALID_FIELDS"


def test_hostname_answers_are_cached_briefly_and_their_names_make_the_etag(client):
    plain = client.get("/api/v1/lookup/81.2.69.160")
    named = client.get("/api/v1/lookup/81.2.69.160?hostname=1")
    assert named.headers["Cache-Control"] == "public, max-age=60"
    assert named.headers["ETag"] != plain.headers["ETag"]
    liar = client.get("/api/v1/lookup/81.2.69.161?hostname=1")
    assert liar.headers["ETag"] not in (named.headers["ETag"], plain.headers["ETag"])
