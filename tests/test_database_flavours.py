"""The same API over the three City database flavours: GeoIP2, GeoLite2 and DB-IP City Lite."""
from mmdb_writer import MmdbF64

from tests.support.city_fixtures import write_city_db


def dbip_record():
    # DB-IP City Lite's shape: no geoname ids for cities, subdivisions without ISO codes, no time zone,
    # no accuracy radius.
    return {
        "city": {"names": {"en": "Lyon"}},
        "continent": {"code": "EU", "geoname_id": 6255148, "names": {"en": "Europe", "de": "Europa"}},
        "country": {"geoname_id": 3017382, "is_in_european_union": True, "iso_code": "FR",
                    "names": {"en": "France", "de": "Frankreich"}},
        "location": {"latitude": MmdbF64(45.7578), "longitude": MmdbF64(4.8320)},
        "subdivisions": [{"names": {"en": "Auvergne-Rhône-Alpes"}}],
    }


def test_dbip_city_lite(make_app, tmp_path):
    path = write_city_db(tmp_path / "dbip.mmdb", {"5.39.0.0/17": dbip_record()}, database_type="DBIP-City-Lite")
    client = make_app(city_db_path=str(path)).test_client()
    doc = client.get("/api/v1/lookup/5.39.1.1?lang=de").get_json()
    result = doc["results"][0]
    assert result["city"] == {"name": "Lyon", "geoname_id": None}
    assert result["country"] == {"iso_code": "FR", "name": "Frankreich", "is_in_european_union": True}
    assert result["subdivisions"] == [{"iso_code": None, "name": "Auvergne-Rhône-Alpes"}]
    assert result["location"]["accuracy_radius"] is None
    assert result["timezone"]["name"] == "Europe/Paris" and result["timezone"]["source"] == "tz_world"
    assert doc["database"]["source"] == "dbip" and "CC BY 4.0" in doc["database"]["attribution"]
    assert client.get("/readyz").get_json()["database"]["source"] == "dbip"


def test_geolite2_city(make_app, maxmind_testdata):
    client = make_app(city_db_path=str(maxmind_testdata / "GeoLite2-City-Test.mmdb")).test_client()
    doc = client.get("/api/v1/lookup/216.160.83.56").get_json()
    result = doc["results"][0]
    assert result["city"]["name"] == "Milton" and result["subdivisions"][0]["iso_code"] == "WA"
    assert result["timezone"]["name"] == "America/Los_Angeles" and result["timezone"]["source"] == "mmdb"
    assert doc["database"]["type"] == "GeoLite2-City" and doc["database"]["source"] == "maxmind"


def test_source_label_override(make_app):
    client = make_app(db_source_label="snapshot").test_client()
    assert client.get("/api/v1/lookup/81.2.69.160").get_json()["database"]["source"] == "snapshot"
