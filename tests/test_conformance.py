"""For every network in MaxMind's GeoIP2-City-Test source JSON, our answer agrees with Reader.city()."""
import ipaddress
import json

import geoip2.database
import pytest

from app import create_app
from app.targets import is_reserved
from tests.conftest import make_config


@pytest.fixture(scope="module")
def maxmind_city(maxmind_testdata):
    path = maxmind_testdata / "GeoIP2-City-Test.mmdb"
    networks = [next(iter(entry)) for entry in json.loads((maxmind_testdata / "GeoIP2-City-Test.json").read_text())]
    with geoip2.database.Reader(str(path)) as reader:
        yield path, networks, reader


def names(record, lang="en"):
    return record.names.get(lang) or record.names.get("en") if record.names else None


def test_every_network_agrees_with_reader_city(maxmind_city):
    path, networks, reader = maxmind_city
    client = create_app(make_config(city_db_path=str(path))).test_client()
    checked = reserved = 0
    assert len(networks) > 200
    for network in networks:
        first = ipaddress.ip_network(network)[0]
        response = client.get(f"/api/v1/lookup/{first}")
        if is_reserved(first):
            assert response.status_code == 422, network
            reserved += 1
            continue
        expected = reader.city(str(first))
        assert response.status_code == 200, (network, response.get_json())
        [result] = response.get_json()["results"]
        assert result["network"] == str(expected.traits.network), network
        assert result["city"] == {"name": names(expected.city), "geoname_id": expected.city.geoname_id}, network
        assert result["country"]["iso_code"] == expected.country.iso_code, network
        assert result["country"]["name"] == names(expected.country), network
        assert result["country"]["is_in_european_union"] == (expected.country.is_in_european_union
                                                             if expected.country.iso_code else None), network
        assert result["continent"] == {"code": expected.continent.code, "name": names(expected.continent)}, network
        assert result["registered_country"] == {"iso_code": expected.registered_country.iso_code,
                                                "name": names(expected.registered_country)}, network
        assert result["subdivisions"] == [{"iso_code": s.iso_code, "name": names(s)} for s in expected.subdivisions]
        assert result["postal"]["code"] == expected.postal.code, network
        loc = expected.location
        assert result["location"] == {"latitude": loc.latitude, "longitude": loc.longitude,
                                      "accuracy_radius": loc.accuracy_radius}, network
        tz = result["timezone"]
        if loc.time_zone:
            assert (tz["name"], tz["source"]) == (loc.time_zone, "mmdb"), network
        elif loc.latitude is not None:
            assert tz["source"] == "tz_world" and tz["name"], network
        else:
            assert tz["name"] is None, network
        checked += 1
    assert checked > 150


def test_known_addresses(maxmind_city):
    path, _, _ = maxmind_city
    client = create_app(make_config(city_db_path=str(path))).test_client()
    expected = {"81.2.69.160": "Europe/London", "216.160.83.56": "America/Los_Angeles", "2001:218::1": "Asia/Tokyo"}
    for ip, zone in expected.items():
        assert client.get(f"/api/v1/lookup/{ip}").get_json()["results"][0]["timezone"]["name"] == zone
    # Networks without a time zone in the file get one from the polygons.
    for ip, zone in {"2a02:d5c0::1": "Europe/Madrid", "2001:250::1": "Asia/Shanghai"}.items():
        tz = client.get(f"/api/v1/lookup/{ip}").get_json()["results"][0]["timezone"]
        assert (tz["name"], tz["source"]) == (zone, "tz_world")
