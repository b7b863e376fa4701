"""The JSON API for single IP lookups: documents, time zones, languages, errors."""
import datetime as dt

import pytest


def get(client, path, **kwargs):
    response = client.get(path, **kwargs)
    return response.status_code, response.get_json()


def test_city_record_with_database_time_zone(client):
    status, doc = get(client, "/api/v1/lookup/81.2.69.160")
    assert status == 200
    assert doc["query"] == "81.2.69.160" and doc["kind"] == "ip" and doc["canonical_name"] is None
    [result] = doc["results"]
    assert result["ip"] == "81.2.69.160" and result["network"] == "81.2.69.0/24"
    assert result["city"] == {"name": "London", "geoname_id": 2643743}
    assert result["subdivisions"] == [{"iso_code": "ENG", "name": "England"}]
    assert result["country"] == {"iso_code": "GB", "name": "United Kingdom", "is_in_european_union": False}
    assert result["continent"] == {"code": "EU", "name": "Europe"}
    assert result["postal"] == {"code": "EC2V"}
    assert result["location"] == {"latitude": 51.5142, "longitude": -0.0931, "accuracy_radius": 10}
    tz = result["timezone"]
    assert tz["name"] == "Europe/London" and tz["source"] == "mmdb" and tz["confidence"] == "exact"
    assert tz["degraded"] is False and tz["at_sea"] is False
    local = dt.datetime.fromisoformat(tz["local_time"])
    assert tz["utc_offset"] in ("+00:00", "+01:00") and local.isoformat()[-6:] == tz["utc_offset"]
    assert abs((local - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 60
    assert doc["database"]["type"] == "GeoIP2-City" and doc["database"]["source"] == "maxmind"
    assert dt.date.fromisoformat(doc["database"]["build_date"])


def test_missing_time_zone_comes_from_tz_world_polygons(client):
    _, doc = get(client, "/api/v1/lookup/2.2.3.4")
    tz = doc["results"][0]["timezone"]
    assert tz["name"] == "Europe/Paris" and tz["source"] == "tz_world" and tz["confidence"] == "exact"
    assert tz["utc_offset"] in ("+01:00", "+02:00")


def test_ipv6_record_without_time_zone(client):
    _, doc = get(client, "/api/v1/lookup/2a02:d5c0::1")
    result = doc["results"][0]
    assert result["network"] == "2a02:d5c0::/29" and result["city"]["name"] == "Madrid"
    assert result["timezone"]["name"] == "Europe/Madrid" and result["timezone"]["source"] == "tz_world"


def test_country_level_record_is_marked_approximate(client):
    _, doc = get(client, "/api/v1/lookup/3.0.0.1")
    result = doc["results"][0]
    assert result["city"] == {"name": None, "geoname_id": None}
    assert result["subdivisions"] == [] and result["postal"] == {"code": None}
    assert result["timezone"]["name"] == "America/Chicago" and result["timezone"]["confidence"] == "approximate"


def test_missing_data_is_null_never_made_up(client):
    _, doc = get(client, "/api/v1/lookup/5.5.5.5")
    result = doc["results"][0]
    assert result["location"] == {"latitude": None, "longitude": None, "accuracy_radius": None}
    assert result["timezone"] == {"name": None, "source": None, "utc_offset": None, "local_time": None,
                                  "at_sea": False, "confidence": None, "degraded": False}
    assert "Unknown" not in str(doc)


def test_point_at_sea_is_an_ocean_zone(client):
    _, doc = get(client, "/api/v1/lookup/6.6.6.6")
    tz = doc["results"][0]["timezone"]
    assert tz["name"] == "Etc/GMT+2" and tz["at_sea"] is True and tz["utc_offset"] == "-02:00"


def test_routable_neighbours_of_reserved_ranges(client):
    assert get(client, "/api/v1/lookup/100.128.0.1")[1]["results"][0]["city"]["name"] == "Milton"
    assert get(client, "/api/v1/lookup/172.32.0.1")[1]["results"][0]["city"]["name"] == "Los Angeles"


def test_registered_country_differs(client):
    result = get(client, "/api/v1/lookup/9.9.9.9")[1]["results"][0]
    assert result["country"]["iso_code"] == "CH" and result["registered_country"]["iso_code"] == "US"


@pytest.mark.parametrize("lang, header, city", [
    ("de", None, "London"), ("es", None, "Londres"), ("ja", None, "ロンドン"), ("pt-br", None, "London"),
    (None, "fr-CH, fr;q=0.9, en;q=0.8", "Londres"), (None, "ru", "Лондон"), ("xx", None, "London"),
    (None, "tlh", "London"), ("es", "ru", "Londres"),
])
def test_language_of_names(client, lang, header, city):
    path = "/api/v1/lookup/81.2.69.160" + (f"?lang={lang}" if lang else "")
    headers = {"Accept-Language": header} if header else {}
    assert get(client, path, headers=headers)[1]["results"][0]["city"]["name"] == city


@pytest.mark.parametrize("target", ["10.0.0.1", "127.0.0.1", "192.168.0.1", "::1", "fe80::1", "100.64.0.1",
                                    "224.0.0.1", "192.0.2.1", "2001:db8::1", "0.0.0.0", "::ffff:10.1.1.1"])
def test_reserved_addresses_are_422(client, target):
    status, doc = get(client, f"/api/v1/lookup/{target}")
    assert status == 422 and doc["error"]["code"] == "IP_ADDRESS_RESERVED"
    assert target not in doc["error"]["message"]


def test_address_not_in_database_is_404(client):
    status, doc = get(client, "/api/v1/lookup/8.8.8.8")
    assert status == 404 and doc == {"error": {"code": "IP_ADDRESS_NOT_FOUND",
                                               "message": "The address is not in the City database."}}


@pytest.mark.parametrize("target", ["8.8.8", "01.2.3.4", "1.2.3.4/24", "fe80::1%25eth0", "localhost",
                                    "%3Cscript%3Ealert(1)%3C%2Fscript%3E", "a%00b.com", "1.2.3.4%0d%0aX-Injected:1"])
def test_invalid_targets_are_400_without_echo(client, target):
    response = client.get(f"/api/v1/lookup/{target}")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "INVALID_TARGET"
    body = response.get_data(as_text=True)
    assert "<script" not in body and "eth0" not in body and "Injected" not in body
    assert response.headers["Content-Type"].startswith("application/json")


def test_single_label_name_makes_no_dns_query(client, dns_server):
    before = len(dns_server.resolver.queries)
    assert get(client, "/api/v1/lookup/localhost")[0] == 400
    assert get(client, "/api/v1/lookup/tz_world")[0] == 400
    assert len(dns_server.resolver.queries) == before


def test_legacy_route_answers_json(client):
    status, doc = get(client, "/81.2.69.160", headers={"Accept": "application/json"})
    assert status == 200 and doc["results"][0]["city"]["name"] == "London"
    assert get(client, "/8.8.8")[0] == 400


def test_unknown_route_and_method_are_json_errors(client):
    status, doc = get(client, "/api/v1/nothing/here")
    assert status == 404 and doc["error"]["code"] == "NOT_FOUND"
    response = client.delete("/api/v1/lookup/8.8.8.8")
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "METHOD_NOT_ALLOWED"


def test_security_headers(client):
    response = client.get("/api/v1/lookup/81.2.69.160")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_when_configured(make_app):
    client = make_app(cors_allow_origin="*").test_client()
    assert client.get("/api/v1/lookup/81.2.69.160").headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in client.get("/healthz").headers


def test_health_and_readiness(client):
    assert get(client, "/healthz") == (200, {"status": "ok"})
    status, report = get(client, "/readyz")
    assert status == 200 and report["status"] == "ready"
    db = report["database"]
    assert db["loaded"] and db["type"] == "GeoIP2-City" and db["error"] is None and db["age_days"] < 1
    assert report["timezone"]["backend"] == "embedded" and report["timezone"]["state"] == "ok"


def test_no_database_is_503_until_one_appears(make_app, tmp_path):
    from tests.support.city_fixtures import write_city_db
    import time
    path = tmp_path / "later.mmdb"
    client = make_app(city_db_path=str(path)).test_client()
    status, doc = get(client, "/api/v1/lookup/81.2.69.160")
    assert status == 503 and doc["error"]["code"] == "DATABASE_UNAVAILABLE"
    status, report = get(client, "/readyz")
    assert status == 503 and report["status"] == "unavailable" and "missing" in report["database"]["error"]
    write_city_db(path)
    deadline = time.monotonic() + 10  # checked every 0.05 s; generous for a busy machine
    while get(client, "/readyz")[0] != 200:
        assert time.monotonic() < deadline, "the new file was not picked up"
        time.sleep(0.02)
    assert get(client, "/api/v1/lookup/81.2.69.160")[0] == 200


def test_wrong_database_type_is_refused(make_app, maxmind_testdata):
    client = make_app(city_db_path=str(maxmind_testdata / "GeoLite2-ASN-Test.mmdb")).test_client()
    status, report = get(client, "/readyz")
    assert status == 503 and "not a City database" in report["database"]["error"]


def test_stale_database_is_reported(make_app, tmp_path):
    import os
    import time
    from tests.support.city_fixtures import write_city_db
    from app.citydb import open_city_reader
    path = write_city_db(tmp_path / "old.mmdb")
    client = make_app(city_db_path=str(path), city_db_max_age_days=1).test_client()
    assert client.get("/readyz").get_json()["database"]["stale"] is False
    # A database built 40 days ago: rewrite its build_epoch (mmdb-writer stamps "now").
    data = bytearray(path.read_bytes())
    _, info = open_city_reader(str(path))
    old = info.build_epoch - 40 * 86400
    marker = data.rfind(b"build_epoch")
    index = data.find(info.build_epoch.to_bytes(4, "big"), marker)
    data[index:index + 4] = old.to_bytes(4, "big")
    (tmp_path / "new").write_bytes(bytes(data))
    os.replace(tmp_path / "new", path)
    time.sleep(0.1)
    report = client.get("/readyz").get_json()
    assert report["status"] == "degraded" and report["database"]["stale"] is True
    assert report["database"]["age_days"] >= 40
