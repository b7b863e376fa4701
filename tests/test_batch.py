"""POST /api/v1/lookup: many targets, in input order, a per-item error where one fails."""
import json
import time


def post(client, payload, **kwargs):
    data = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    response = client.post("/api/v1/lookup", data=data, content_type="application/json", **kwargs)
    return response.status_code, response.get_json()


def test_mixed_batch_in_input_order(client):
    targets = ["81.2.69.160", "paris.test.example", "8.8.8", "10.0.0.1", "8.8.8.8", "nope.test.example",
               "2a02:d5c0::1", 42, None, "www.alias.test.example"]
    status, doc = post(client, {"targets": targets})
    assert status == 200
    items = doc["results"]
    assert len(items) == len(targets)
    assert items[0]["results"][0]["city"]["name"] == "London"
    assert items[1]["kind"] == "domain" and len(items[1]["results"]) == 2
    assert [items[i]["error"]["code"] for i in (2, 3, 4, 5, 7, 8)] == [
        "INVALID_TARGET", "IP_ADDRESS_RESERVED", "IP_ADDRESS_NOT_FOUND", "DOMAIN_NOT_FOUND",
        "INVALID_TARGET", "INVALID_TARGET"]
    assert items[2]["query"] == "8.8.8" and items[7]["query"] is None
    assert items[6]["results"][0]["city"]["name"] == "Madrid"
    assert items[9]["canonical_name"] == "edge.cdn.test.example"


def test_language_applies_to_every_item(client):
    _, doc = post(client, {"targets": ["81.2.69.160"], "lang": "es"})
    assert doc["results"][0]["results"][0]["city"]["name"] == "Londres"


def test_cap(make_app):
    client = make_app(batch_max=5).test_client()
    assert post(client, {"targets": ["81.2.69.160"] * 5})[0] == 200
    status, doc = post(client, {"targets": ["81.2.69.160"] * 6})
    assert status == 413 and doc["error"]["code"] == "BATCH_TOO_LARGE"


def test_default_cap_is_1000(client):
    assert post(client, {"targets": ["81.2.69.160"] * 1000})[0] == 200
    assert post(client, {"targets": ["81.2.69.160"] * 1001})[0] == 413


def test_oversized_body_is_413(client):
    status, doc = post(client, {"targets": ["x" * 1000] * 600})
    assert status == 413 and doc["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_malformed_bodies_are_400(client):
    for body in ["{", "[]", '{"targets": "8.8.8.8"}', '{"other": []}', "null", b"\xff\xfe\x00", '"x"',
                 "[" * 5000 + "]" * 5000, '{"targets": [' + "[" * 3000 + "]" * 3000 + "]}"]:
        status, doc = post(client, body)
        assert status in (400, 200), body[:20]
        if status == 200:  # deeply nested but valid JSON: the item itself is refused
            assert doc["results"][0]["error"]["code"] == "INVALID_TARGET"
        else:
            assert doc["error"]["code"] == "BAD_REQUEST"


def test_empty_batch(client):
    assert post(client, {"targets": []}) == (200, {"results": []})


def test_names_on_a_silent_dns_server_share_one_budget(make_app, dns_server):
    """40 unanswered names at 2 concurrent lookups would take 20 x DNS_TIMEOUT one after another.
    With one budget of 2 x DNS_TIMEOUT, two rounds of two names are asked and the other names
    never are: what the DNS server receives is the structure asserted (no wall-clock bound: the
    budget's arithmetic is tested with an injected clock in test_dns_deadline.py)."""
    client = make_app(dns_timeout=0.3, batch_concurrency=2).test_client()
    targets = ["slow.test.example"] * 40 + ["81.2.69.160", "london.test.example"]
    before = len(dns_server.resolver.queries)
    status, doc = post(client, {"targets": targets})
    assert status == 200
    time.sleep(0.5)  # a name that started late would be asked by now
    asked = [q for q in dns_server.resolver.queries[before:] if q[0] == "slow.test.example"]
    assert 0 < len(asked) <= 2 * 2 * 2, asked  # rounds x concurrency x (A, AAAA)
    codes = [item.get("error", {}).get("code") for item in doc["results"][:40]]
    assert set(codes) == {"DNS_TIMEOUT"}
    assert doc["results"][40]["results"][0]["city"]["name"] == "London"
