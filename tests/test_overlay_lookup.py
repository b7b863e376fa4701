"""The overlay in the lookup service and every route that answers: what an entry overrides and
what it leaves to the databases, reserved ranges, `me` behind a trusted proxy, the MaxMind-
compatible endpoint, /readyz, and schema-valid responses."""
from __future__ import annotations

import pytest

from tests.support.openapi_check import validate_response

FEED = """# offices and VPN ranges
81.2.69.160/32,GB,GB-ENG,Cambridge,CB2,,,,
81.2.69.176/28,FR,FR-IDF,Paris,,48.8566,2.3522,5,
2.2.3.0/24,,,,75008
10.8.0.0/16,NL,NL-NH,Amsterdam,,52.3676,4.9041,3,
10.9.0.0/16,DE,DE-BE,Berlin,,,,,Europe/Berlin
2001:db8:1::/48,JP,JP-13,Tokyo,,35.69,139.69,10,Asia/Tokyo
"""


@pytest.fixture
def feed(tmp_path):
    path = tmp_path / "overlay" / "offices.csv"
    path.parent.mkdir()
    path.write_text(FEED)
    return path


@pytest.fixture
def overlay_client(make_app, feed):
    return make_app(overlay_sources=(str(feed.parent),)).test_client()


def lookup(client, target, **params):
    response = client.get(f"/api/v1/lookup/{target}", query_string=params)
    return response.status_code, response.get_json()


def test_a_city_fix_keeps_the_database_country_region_and_time_zone(overlay_client):
    status, doc = lookup(overlay_client, "81.2.69.160")
    assert status == 200
    result, = doc["results"]
    assert result["overlay"] == {"prefix": "81.2.69.160/32", "file": "offices.csv",
                                 "fields": ["country", "region", "city", "postal"]}
    assert result["city"] == {"name": "Cambridge", "geoname_id": None}
    assert result["country"]["name"] == "United Kingdom"  # the same country: the database's block
    assert result["subdivisions"] == [{"iso_code": "ENG", "name": "England"}]
    assert result["postal"] == {"code": "CB2"}
    assert result["location"] == {"latitude": None, "longitude": None, "accuracy_radius": None}
    assert result["timezone"]["name"] == "Europe/London"  # same region: its zone still holds
    assert result["network"] == "81.2.69.0/24"  # the database's network
    validate_response("/api/v1/lookup/{target}", "get", 200, doc)


def test_a_move_to_another_country_clears_what_belongs_to_the_old_one(overlay_client):
    _, doc = lookup(overlay_client, "81.2.69.180", lang="de")
    result, = doc["results"]
    assert result["country"] == {"iso_code": "FR", "name": "Frankreich", "is_in_european_union": True}
    assert result["continent"] == {"code": None, "name": None}
    assert result["subdivisions"] == [{"iso_code": "IDF", "name": "Île de France"}]  # ISO 3166-2, in German
    assert result["city"]["name"] == "Paris" and result["postal"] == {"code": None}
    assert result["location"] == {"latitude": 48.8566, "longitude": 2.3522, "accuracy_radius": 5}
    assert result["timezone"]["name"] == "Europe/Paris" and result["timezone"]["source"] == "tz_world"
    assert result["registered_country"]["iso_code"] == "GB"  # registration is the database's


def test_an_entry_that_sets_one_field_leaves_the_rest(overlay_client):
    _, doc = lookup(overlay_client, "2.2.3.4")
    result, = doc["results"]
    assert result["postal"] == {"code": "75008"} and result["city"]["name"] == "Paris"
    assert result["location"]["latitude"] == 48.8566 and result["overlay"]["fields"] == ["postal"]
    _, untouched = lookup(overlay_client, "2.2.4.4")
    assert untouched["results"][0]["overlay"] is None


def test_reserved_ranges_are_answered_only_when_an_entry_covers_them(overlay_client, make_app):
    status, doc = lookup(overlay_client, "10.8.1.2", lang="ja")
    assert status == 200
    result, = doc["results"]
    assert result["city"]["name"] == "Amsterdam" and result["country"]["name"] == "オランダ"
    assert result["network"] == "10.8.0.0/16" and result["timezone"]["name"] == "Europe/Amsterdam"
    status, doc = lookup(overlay_client, "10.9.4.4")
    assert status == 200 and doc["results"][0]["timezone"]["name"] == "Europe/Berlin"
    assert doc["results"][0]["timezone"]["source"] == "overlay"
    assert lookup(overlay_client, "2001:db8:1::1")[1]["results"][0]["city"]["name"] == "Tokyo"
    for uncovered in ("10.10.0.1", "192.168.1.1", "2001:db8:2::1"):
        status, doc = lookup(overlay_client, uncovered)
        assert status == 422 and doc["error"]["code"] == "IP_ADDRESS_RESERVED"
    assert lookup(make_app().test_client(), "10.8.1.2")[0] == 422  # no overlay: as before


def test_me_behind_a_trusted_proxy(overlay_client):
    response = overlay_client.get("/api/v1/lookup/me", headers={"X-Forwarded-For": "10.8.7.7"})
    assert response.status_code == 200 and response.get_json()["results"][0]["city"]["name"] == "Amsterdam"
    response = overlay_client.get("/api/v1/lookup/me", headers={"X-Forwarded-For": "192.168.7.7"})
    assert response.status_code == 422


def test_domains_still_withhold_internal_addresses(overlay_client):
    response = overlay_client.get("/api/v1/lookup/internal.test.example")
    assert response.status_code == 422 and "10.1.2.3" not in response.get_data(as_text=True)


def test_batch_and_maxmind_endpoint_show_overlay_answers(overlay_client):
    response = overlay_client.post("/api/v1/lookup", json={"targets": ["10.8.1.2", "10.10.0.1", "81.2.69.160"]})
    items = response.get_json()["results"]
    assert items[0]["results"][0]["city"]["name"] == "Amsterdam"
    assert items[1]["error"]["code"] == "IP_ADDRESS_RESERVED"
    assert items[2]["results"][0]["city"]["name"] == "Cambridge"
    compat = overlay_client.get("/geoip/v2.1/city/10.8.1.2")
    assert compat.status_code == 200
    body = compat.get_json()
    assert body["city"]["names"]["en"] == "Amsterdam" and body["country"]["iso_code"] == "NL"
    assert body["country"]["names"]["de"] == "Niederlande"
    assert body["location"]["latitude"] == 52.3676 and body["traits"]["network"] == "10.8.0.0/16"
    city_fix = overlay_client.get("/geoip/v2.1/city/81.2.69.160").get_json()
    assert city_fix["city"]["names"]["de"] == "Cambridge" and "geoname_id" not in city_fix["city"]
    assert city_fix["country"]["names"]["en"] == "United Kingdom"
    assert overlay_client.get("/geoip/v2.1/city/10.10.0.1").status_code == 400


def test_readyz_shows_each_overlay_file(overlay_client, feed):
    report = overlay_client.get("/readyz").get_json()
    assert report["status"] == "ready"
    overlay = report["overlay"]
    assert overlay["loaded"] and overlay["entries"] == 6
    file, = overlay["files"]
    assert file["path"] == str(feed) and file["entries"] == 6 and file["loaded_at"] and file["problems"] == []


def test_a_bad_file_degrades_readyz_and_keeps_serving(make_app, feed):
    client = make_app(overlay_sources=(str(feed.parent),)).test_client()
    assert lookup(client, "10.8.1.2")[0] == 200
    bad = feed.with_suffix(".new")
    bad.write_text(FEED + "10.11.0.0/16,QQ,,,\n")
    bad.rename(feed)
    import time
    time.sleep(0.1)  # past the check interval (0.05 s in the tests)
    assert lookup(client, "10.8.1.2")[0] == 200
    report = client.get("/readyz").get_json()
    assert report["status"] == "degraded"
    assert report["overlay"]["files"][0]["problems"] == ["line 8: unknown country code 'QQ' (ISO 3166-1 alpha-2 expected)"]


def test_the_page_shows_overlay_answers(overlay_client):
    response = overlay_client.get("/?q=10.8.1.2")
    assert response.status_code == 200
    text = response.get_data(as_text=True).split('<template id="card-template">')[0]
    assert "Amsterdam" in text and "Corrected by" in text and "offices.csv (10.8.0.0/16)" in text
    plain = overlay_client.get("/?q=2.2.4.4").get_data(as_text=True).split('<template id="card-template">')[0]
    assert 'data-row="overlay" hidden' in plain


def test_warm_up_reads_the_overlay_before_the_first_request(make_app, feed):
    services = make_app(overlay_sources=(str(feed.parent),)).extensions["geoip"]
    assert services.overlay.reloads == 0
    services.warm_up()
    assert services.overlay.reloads == 1 and services.overlay.status()["entries"] == 6


def test_cli_status_shows_the_overlay(feed, city_db):
    import os
    import subprocess
    import sys
    from pathlib import Path
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEOIP_", "TZ_", "DNS_"))}
    env.update(GEOIP_CITY_DB=str(city_db), GEOIP_OVERLAY=str(feed))
    done = subprocess.run([sys.executable, "cli.py", "status"], cwd=Path(__file__).resolve().parent.parent, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and f"overlay:      {feed}: 6 entries, loaded " in done.stdout


def test_an_overlay_reload_changes_the_etag(make_app, feed):
    import time
    client = make_app(overlay_sources=(str(feed.parent),)).test_client()
    first = client.get("/api/v1/lookup/81.2.69.160")
    tag = first.headers["ETag"]
    assert client.get("/api/v1/lookup/81.2.69.160", headers={"If-None-Match": tag}).status_code == 304
    replacement = feed.with_suffix(".new")
    replacement.write_text(FEED.replace("Cambridge", "Oxford"))
    replacement.rename(feed)
    time.sleep(0.1)  # past the check interval
    again = client.get("/api/v1/lookup/81.2.69.160", headers={"If-None-Match": tag})
    assert again.status_code == 200 and again.get_json()["results"][0]["city"]["name"] == "Oxford"
    assert again.headers["ETag"] != tag
    # The same content gives the same version in every worker (and replica).
    other = make_app(overlay_sources=(str(feed.parent),)).extensions["geoip"]
    assert other.overlay.version()[1] == client.application.extensions["geoip"].overlay.version()[1]
