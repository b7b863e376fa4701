"""The network owner (ASN) end to end: GEOIP_ASN_DB, the `asn` block on every kind of lookup, the
MaxMind traits, readiness, and bad ASN files refused while the live one stays."""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import threading
import time

import geoip2.database
import geoip2.errors
import geoip2.webservice
import pytest

from app.targets import is_reserved
from tests.support.city_fixtures import STANDARD_ASN, backdate, write_asn_db
from tests.test_geoip_compat import serve as tls_server, tls  # noqa: F401 (fixtures)

GOOGLE = {"number": 15169, "organization": "Google LLC", "network": "8.8.4.0/24"}


@pytest.fixture
def asn_db(tmp_path):
    return write_asn_db(tmp_path / "asn.mmdb")


@pytest.fixture
def asn_client(make_app, asn_db):
    return make_app(asn_db_path=str(asn_db)).test_client()


def _result(client, target, **query):
    response = client.get(f"/api/v1/lookup/{target}", query_string=query)
    assert response.status_code == 200, response.get_data()
    return response.get_json()


# -- the asn block ------------------------------------------------------------------------

def test_both_databases_know_the_address(asn_client):
    doc = _result(asn_client, "81.2.69.160")
    result = doc["results"][0]
    assert result["city"]["name"] == "London"
    assert result["asn"] == {"number": 20712, "organization": "Andrews & Arnold Ltd", "network": "81.2.69.0/24"}
    assert doc["asn_database"]["type"] == "GeoLite2-ASN" and doc["asn_database"]["source"] == "maxmind"


def test_an_address_only_the_asn_file_knows_still_answers(asn_client):
    doc = _result(asn_client, "8.8.4.4")
    result = doc["results"][0]
    assert result["asn"] == GOOGLE and result["network"] == "8.8.4.0/24"
    assert result["city"] == {"name": None, "geoname_id": None} and result["country"]["iso_code"] is None
    assert result["location"]["latitude"] is None and result["timezone"]["name"] is None
    ipv6 = _result(asn_client, "2001:4860::8844")["results"][0]
    assert ipv6["asn"] == dict(GOOGLE, network="2001:4860::/32")


def test_an_address_only_the_city_file_knows_has_asn_null(asn_client):
    result = _result(asn_client, "9.9.9.9")["results"][0]
    assert result["city"]["name"] == "Zurich" and result["asn"] is None


def test_an_address_neither_knows_is_not_found(asn_client):
    response = asn_client.get("/api/v1/lookup/44.0.0.1")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "IP_ADDRESS_NOT_FOUND"


def test_without_an_asn_database_asn_is_null_and_nothing_degrades(client):
    doc = _result(client, "81.2.69.160")
    assert doc["results"][0]["asn"] is None and doc["asn_database"] is None
    assert client.get("/api/v1/lookup/8.8.4.4").status_code == 404
    report = client.get("/readyz").get_json()
    asn = next(entry for entry in report["databases"] if entry["kind"] == "asn")
    assert asn["configured"] is False and "GEOIP_ASN_DB" in asn["detail"]
    assert not any(problem.startswith("asn") for problem in report["problems"])


def test_batch_domains_me_and_the_legacy_route_carry_asn(asn_client, make_app, asn_db):
    body = asn_client.post("/api/v1/lookup", json={"targets": ["8.8.4.4", "81.2.69.160", "london.test.example",
                                                               "10.0.0.1"]}).get_json()["results"]
    assert body[0]["results"][0]["asn"] == GOOGLE
    assert body[1]["results"][0]["asn"]["number"] == 20712
    assert all("asn" in result for result in body[2]["results"])
    assert body[3]["error"]["code"] == "IP_ADDRESS_RESERVED"
    legacy = asn_client.get("/8.8.4.4", headers={"Accept": "application/json"}).get_json()
    assert legacy["results"][0]["asn"] == GOOGLE
    me = make_app(asn_db_path=str(asn_db), trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),)).test_client()
    response = me.get("/api/v1/lookup/me", headers={"X-Forwarded-For": "8.8.4.4"})
    assert response.get_json()["results"][0]["asn"] == GOOGLE


def test_the_fast_path_and_flask_answer_asn_alike(asn_client):
    fast = asn_client.get("/api/v1/lookup/8.8.4.4")  # the fast path's request shape
    flask = asn_client.get("/api/v1/lookup/8.8.4.4", headers={"Accept-Language": "en"})  # goes to Flask
    assert fast.get_json()["results"][0]["asn"] == flask.get_json()["results"][0]["asn"] == GOOGLE


# -- conformance and the MaxMind-compatible endpoint -----------------------------------------

def _first_addresses(maxmind_testdata) -> list[str]:
    entries = json.loads((maxmind_testdata / "GeoLite2-ASN-Test.json").read_text())
    return [str(ipaddress.ip_network(next(iter(entry)))[0]) for entry in entries]


def test_asn_agrees_with_geoip2_reader_on_every_network(make_app, maxmind_testdata):
    path = maxmind_testdata / "GeoLite2-ASN-Test.mmdb"
    client = make_app(city_db_path=str(maxmind_testdata / "GeoIP2-City-Test.mmdb"), asn_db_path=str(path)).test_client()
    compared = 0
    with geoip2.database.Reader(str(path)) as reader:
        for address in _first_addresses(maxmind_testdata):
            response = client.get(f"/api/v1/lookup/{address}")
            if is_reserved(ipaddress.ip_address(address)):
                assert response.status_code == 422, address
                continue
            assert response.status_code == 200, (address, response.get_data())
            expected = reader.asn(address)
            assert response.get_json()["results"][0]["asn"] == {
                "number": expected.autonomous_system_number,
                "organization": expected.autonomous_system_organization,
                "network": str(expected.network)}, address
            compared += 1
    assert compared > 100


def test_the_official_client_sees_the_asn_traits(maxmind_testdata, tls_server):
    city = maxmind_testdata / "GeoIP2-City-Test.mmdb"
    asn = maxmind_testdata / "GeoLite2-ASN-Test.mmdb"
    with tls_server(city_db_path=str(city), asn_db_path=str(asn)) as server, \
            geoip2.database.Reader(str(asn)) as asn_reader, geoip2.database.Reader(str(city)) as city_reader, \
            geoip2.webservice.Client(42, "licence", host=f"127.0.0.1:{server.port}") as client:
        for address in ("1.128.0.0", "2.125.160.216", "81.2.69.160", "216.160.83.56"):
            model = client.city(address)
            try:
                expected = asn_reader.asn(address)
            except geoip2.errors.AddressNotFoundError:
                expected = None
            if expected is None:
                assert model.traits.autonomous_system_number is None
            else:
                assert model.traits.autonomous_system_number == expected.autonomous_system_number
                assert model.traits.autonomous_system_organization == expected.autonomous_system_organization
            try:
                assert model.city.name == city_reader.city(address).city.name
            except geoip2.errors.AddressNotFoundError:  # ASN-only: the traits, no place
                assert model.city.name is None and expected is not None
        assert client.city("1.128.0.0").traits.autonomous_system_number == 1221


def test_maxmind_endpoint_is_unchanged_without_asn(make_app):
    body = make_app().test_client().get("/geoip/v2.1/city/81.2.69.160").get_json()
    assert "autonomous_system_number" not in body["traits"]
    assert body["traits"]["network"] == "81.2.69.0/24"


# -- readiness -------------------------------------------------------------------------------

def test_readyz_and_status_list_every_database(asn_client):
    report = asn_client.get("/readyz").get_json()
    kinds = [entry["kind"] for entry in report["databases"]]
    assert kinds == ["city", "asn"]
    asn = report["databases"][1]
    for key in ("type", "build_date", "age_days", "stale", "source", "reader", "record_cache"):
        assert key in asn, key
    assert asn["type"] == "GeoLite2-ASN" and asn["stale"] is False and asn["reader"]["native"] is True
    assert report["status"] == "ready"


def test_a_stale_asn_database_degrades_readiness(make_app, tmp_path):
    path = write_asn_db(tmp_path / "asn.mmdb")
    client = make_app(asn_db_path=str(path), asn_db_max_age_days=30).test_client()
    assert client.get("/readyz").get_json()["status"] == "ready"
    backdate(path, 40)
    services = client.application.extensions["geoip"]
    _wait_for(lambda: services.asn_db.info is not None and services.asn_db.reloads >= 2)
    report = client.get("/readyz").get_json()
    assert report["status"] == "degraded" and report["databases"][1]["stale"] is True
    assert report["databases"][1]["age_days"] >= 40 and report["database"]["stale"] is False
    assert any(problem.startswith("asn:") and "days old" in problem for problem in report["problems"])
    assert _result(client, "8.8.4.4")["results"][0]["asn"] == GOOGLE  # stale still answers


def test_an_asn_file_not_installed_yet_is_noted_and_city_still_answers(make_app, tmp_path):
    """A first start with no source reachable: ready without ASN, and saying so."""
    client = make_app(asn_db_path=str(tmp_path / "absent.mmdb")).test_client()
    assert _result(client, "81.2.69.160")["results"][0]["asn"] is None
    report = client.get("/readyz").get_json()
    assert report["status"] == "ready" and report["problems"] == []
    asn = report["databases"][1]
    assert asn["loaded"] is False and "missing" in asn["error"]
    assert any("not installed yet" in note and "\"asn\": null" in note for note in report["notes"])


# -- bad files -------------------------------------------------------------------------------

def _wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "city_file", "empty"])
def test_a_bad_asn_file_is_refused_and_the_live_one_stays(make_app, asn_db, tmp_path, city_db, damage):
    client = make_app(asn_db_path=str(asn_db)).test_client()
    assert _result(client, "8.8.4.4")["results"][0]["asn"] == GOOGLE
    bad = tmp_path / "bad.mmdb"
    if damage == "truncated":
        bad.write_bytes(asn_db.read_bytes()[: asn_db.stat().st_size // 2])
    elif damage == "garbage":
        bad.write_bytes(os.urandom(4096))
    elif damage == "city_file":
        shutil.copyfile(city_db, bad)
    else:
        bad.write_bytes(b"")
    os.replace(bad, asn_db)
    services = client.application.extensions["geoip"]
    _wait_for(lambda: services.asn_db.info is not None and services.asn_db.last_error is not None)
    for _ in range(3):
        assert _result(client, "8.8.4.4")["results"][0]["asn"] == GOOGLE  # the live one still answers
    report = client.get("/readyz").get_json()
    assert report["status"] == "degraded" and "could not be opened" in report["databases"][1]["error"]
    if damage == "city_file":
        assert "not an ASN database" in report["databases"][1]["error"]


def test_an_asn_file_offered_as_city_is_refused(make_app, asn_db):
    client = make_app(city_db_path=str(asn_db)).test_client()
    response = client.get("/api/v1/lookup/8.8.4.4")
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "DATABASE_UNAVAILABLE"
    assert "not a City database" in client.get("/readyz").get_json()["database"]["error"]


def test_a_damaged_asn_record_leaves_the_city_answer(make_app, asn_db, monkeypatch):
    client = make_app(asn_db_path=str(asn_db)).test_client()
    services = client.application.extensions["geoip"]
    assert _result(client, "81.2.69.160")["results"][0]["asn"]["number"] == 20712

    def broken(*args, **kwargs):
        raise services.asn_db._damaged()
    monkeypatch.setattr(services.asn_db, "locate", broken)
    result = _result(client, "81.2.69.160")["results"][0]
    assert result["city"]["name"] == "London" and result["asn"] is None
    assert "damaged" in client.get("/readyz").get_json()["databases"][1]["error"]


# -- flavours and hot swap ---------------------------------------------------------------

def test_dbip_asn_lite_is_read_and_attributed(make_app, tmp_path):
    path = write_asn_db(tmp_path / "dbip-asn.mmdb", database_type="DBIP-ASN-Lite (compat=GeoLite2-ASN)")
    doc = _result(make_app(asn_db_path=str(path)).test_client(), "8.8.4.4")
    assert doc["results"][0]["asn"] == GOOGLE
    assert doc["asn_database"]["source"] == "dbip" and "DB-IP" in doc["asn_database"]["attribution"]


def test_asn_swaps_under_load_fail_no_request(make_app, tmp_path):
    path = write_asn_db(tmp_path / "asn.mmdb", {"8.8.4.0/24": (15169, "Gen 0")})
    client_app = make_app(asn_db_path=str(path))
    failures, seen, stop = [], set(), threading.Event()

    def ask():
        client = client_app.test_client()
        while not stop.is_set():
            response = client.get("/api/v1/lookup/8.8.4.4")
            if response.status_code != 200:
                failures.append(response.status_code)
            else:
                seen.add(response.get_json()["results"][0]["asn"]["organization"])

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for generation in range(6):
            if generation:
                write_asn_db(path, {"8.8.4.0/24": (15169, f"Gen {generation}")})
            _wait_for(lambda: f"Gen {generation}" in seen, seconds=60)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == [] and seen == {f"Gen {n}" for n in range(6)}


def test_standard_fixture_covers_every_case():
    """ASN-only, City-only and both, in IPv4 and IPv6 (the tests above rely on it)."""
    assert {"8.8.4.0/24", "2001:4860::/32", "81.2.69.0/24", "2001:218::/32"} <= set(STANDARD_ASN)
