"""HTTP caching of answers (app/http/caching.py), through Nginx: Cache-Control, a weak ETag made of
the answer's inputs, 304 on If-None-Match, Vary; `me` private, errors not cached except the stable
400s; a new database version changes the ETag."""
from __future__ import annotations

import os
import shutil
import time
from types import SimpleNamespace

import pytest

from app.http import caching
from tests.support.city_fixtures import write_city_db
from tests.support.native_stack import NativeStack, http_request

pytestmark = pytest.mark.slow


def get(stack, path: str, headers: dict | None = None):
    status, header_list, body = http_request(stack.port, path, headers=headers)
    return status, {k.lower(): v for k, v in header_list}, body


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    directory = tmp_path_factory.mktemp("caching")
    with NativeStack(write_city_db(directory / "city.mmdb"), env={
            "GEOIP_RATE_LIMIT": "0", "GEOIP_CITY_DB_CHECK_INTERVAL": "0.1", "CACHE_MAX_AGE": "1800"}) as running:
        running.fixtures = directory
        yield running


def test_an_ip_answer_is_public_with_a_weak_etag_and_vary(stack):
    status, headers, body = get(stack, "/api/v1/lookup/81.2.69.160")
    assert status == 200 and body
    assert headers["cache-control"] == "public, max-age=1800"
    assert headers["etag"].startswith('W/"')
    assert "Accept-Language" in headers["vary"]
    # The same inputs, whichever worker answers: the same ETag.
    assert {get(stack, "/api/v1/lookup/81.2.69.160")[1]["etag"] for _ in range(8)} == {headers["etag"]}


def test_if_none_match_gets_304_without_a_body(stack):
    _, headers, _ = get(stack, "/api/v1/lookup/81.2.69.160")
    tag = headers["etag"]
    for extra in ({}, {"Accept-Encoding": "gzip"}):  # the fast path, and gzip in Nginx
        status, answer, body = get(stack, "/api/v1/lookup/81.2.69.160", {"If-None-Match": tag, **extra})
        assert status == 304 and body == b""
        assert answer["etag"] == tag and answer["cache-control"] == "public, max-age=1800"
    # Through the Flask view too (a query string keeps the fast path out).
    _, flask_headers, _ = get(stack, "/api/v1/lookup/81.2.69.160?lang=en")
    assert flask_headers["etag"] == tag  # same inputs: ?lang=en is the default language
    assert get(stack, "/api/v1/lookup/81.2.69.160?lang=en", {"If-None-Match": f'"x", {tag}'})[0] == 304
    assert get(stack, "/api/v1/lookup/81.2.69.160", {"If-None-Match": 'W/"other"'})[0] == 200


def test_other_inputs_other_etags(stack):
    tags = {get(stack, path)[1]["etag"] for path in (
        "/api/v1/lookup/81.2.69.160", "/api/v1/lookup/81.2.69.160?lang=de", "/api/v1/lookup/2.2.3.4",
        "/api/v1/lookup/81.2.69.160?fields=city", "/api/v1/lookup/81.2.69.160?fields=city,country")}
    assert len(tags) == 5
    assert get(stack, "/api/v1/lookup/81.2.69.160", {"Accept-Language": "de"})[1]["etag"] == \
        get(stack, "/api/v1/lookup/81.2.69.160?lang=de")[1]["etag"]


def test_me_is_private_and_errors_are_not_cached_except_stable_400s(stack):
    status, headers, _ = get(stack, "/api/v1/lookup/me", {"X-Forwarded-For": "81.2.69.160"})
    assert status == 200 and headers["cache-control"] == "private, no-store" and "etag" not in headers
    status, headers, _ = get(stack, "/api/v1/lookup/not_a_target!")
    assert status == 400 and headers["cache-control"] == "public, max-age=1800"
    status, headers, _ = get(stack, "/api/v1/lookup/10.0.0.1")
    assert status == 422 and headers["cache-control"] == "no-store"
    status, headers, _ = get(stack, "/api/v1/lookup/8.8.8.8")
    assert status == 404 and headers["cache-control"] == "no-store"


def test_a_new_database_version_changes_the_etag(stack):
    _, headers, _ = get(stack, "/api/v1/lookup/81.2.69.160")
    old = headers["etag"]
    time.sleep(1.1)  # a new build timestamp (seconds)
    replacement = write_city_db(stack.fixtures / "next.mmdb", database_type="GeoLite2-City")
    staged = stack.city_db.with_name("city.mmdb.new")
    shutil.copyfile(replacement, staged)
    os.chown(staged, stack.city_db.stat().st_uid, stack.city_db.stat().st_gid)
    os.replace(staged, stack.city_db)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, headers, _ = get(stack, "/api/v1/lookup/81.2.69.160", {"If-None-Match": old})
        if status == 200 and all(get(stack, "/api/v1/lookup/81.2.69.160", {"If-None-Match": old})[0] == 200
                                 for _ in range(6)):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the old ETag still matched after the swap")
    assert headers["etag"] != old


def test_names_are_cached_no_longer_than_dns_answers_may_live():
    services = SimpleNamespace(config=SimpleNamespace(cache_max_age=3600),
                               loaded_sources=lambda: [SimpleNamespace(name="city", version="v1")])
    name = {"kind": "domain", "query": "example.com", "results": [{"ip": "192.0.2.1"}]}
    moved = {"kind": "domain", "query": "example.com", "results": [{"ip": "192.0.2.2"}]}
    headers = dict(caching.answer_headers(services, name, "en"))
    assert headers["Cache-Control"] == f"public, max-age={caching.DNS_ANSWER_MAX_AGE}"
    assert headers["ETag"] != dict(caching.answer_headers(services, moved, "en"))["ETag"]  # the addresses count


def test_a_names_answer_is_cached_no_longer_than_its_dns_ttl(tmp_path):
    """Through Nginx and the names pool, against a real DNS server: max-age is what is left of
    the name's A/AAAA TTL (never more than CACHE_MAX_AGE), counted down while the resolver keeps
    the answer, and a name's ETag follows its addresses."""
    from tests.support.dns_server import LocalDnsServer
    zone = {"short.test.example": [("A", "81.2.69.160", 7)],
            "long.test.example": [("A", "81.2.69.160", 86400), ("AAAA", "2001:db8::1", 86400)]}
    with LocalDnsServer(zone) as dns, NativeStack(write_city_db(tmp_path / "city.mmdb"), env={
            "GEOIP_RATE_LIMIT": "0", "CACHE_MAX_AGE": "1800", "DNS_NAMESERVERS": dns.nameserver}) as stack:
        status, headers, body = get(stack, "/api/v1/lookup/short.test.example")
        assert status == 200, body
        first = int(headers["cache-control"].removeprefix("public, max-age="))
        assert 0 <= first <= 7, headers["cache-control"]
        # The names pool has one worker: its resolver keeps the answer, and the TTL runs down.
        time.sleep(2.1)
        _, later, _ = get(stack, "/api/v1/lookup/short.test.example")
        assert int(later["cache-control"].removeprefix("public, max-age=")) < first
        # A TTL longer than CACHE_MAX_AGE: CACHE_MAX_AGE bounds it (the database may change first).
        _, long_headers, _ = get(stack, "/api/v1/lookup/long.test.example")
        assert long_headers["cache-control"] == "public, max-age=1800"
