"""The time-zone fallback through a real PostGIS: same zones as the embedded index, degrades, recovers."""
import time

import pytest

from tests.support.postgres import postgres_server, tz_world_dsn, tz_world_outage  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

FALLBACK_ADDRESSES = {"2.2.3.4": "Europe/Paris", "2a02:d5c0::1": "Europe/Madrid", "172.32.0.1": "America/Los_Angeles"}


def zone(client, ip):
    response = client.get(f"/api/v1/lookup/{ip}")
    assert response.status_code == 200
    return response.get_json()["results"][0]["timezone"]


def test_postgis_and_embedded_agree(make_app, tz_world_dsn):
    # A generous statement timeout: this test is about agreement, not speed, on a shared machine.
    postgis = make_app(tz_database_url=tz_world_dsn, tz_statement_timeout_ms=5000).test_client()
    embedded = make_app().test_client()
    for ip, expected in FALLBACK_ADDRESSES.items():
        from_postgis, from_embedded = zone(postgis, ip), zone(embedded, ip)
        assert from_postgis["name"] == from_embedded["name"] == expected
        assert from_postgis["source"] == "tz_world" and not from_postgis["degraded"]
    report = postgis.get("/readyz").get_json()
    assert report["timezone"]["backend"] == "postgis" and report["timezone"]["state"] == "ok"


def test_outage_degrades_then_recovers_by_itself(make_app, tz_world_outage):
    client = make_app(tz_database_url=tz_world_outage.tz_dsn, tz_retry_after=0.2).test_client()
    assert zone(client, "2.2.3.4")["name"] == "Europe/Paris"

    tz_world_outage.stop()
    # Saint-Denis has coordinates no lookup asked for yet: a cached zone would hide the outage.
    tz = zone(client, "2.3.0.1")
    assert tz["degraded"] is True and tz["name"] is None and tz["source"] is None
    assert zone(client, "81.2.69.160")["name"] == "Europe/London"  # the file's own zone needs no PostGIS
    # Paris's record was shaped, with its tz_world answer, before the outage: it is kept as it is.
    assert zone(client, "2.2.9.9") | {"local_time": None, "utc_offset": None} == {
        "name": "Europe/Paris", "source": "tz_world", "degraded": False, "at_sea": False, "confidence": "exact",
        "local_time": None, "utc_offset": None}
    report = client.get("/readyz")
    assert report.status_code == 200
    assert report.get_json()["status"] == "degraded" and report.get_json()["timezone"]["state"] != "ok"

    tz_world_outage.start()
    deadline = time.monotonic() + 10
    while zone(client, "2.3.0.1")["name"] != "Europe/Paris":
        assert time.monotonic() < deadline, "no recovery after PostGIS came back"
        time.sleep(0.1)
    assert client.get("/readyz").get_json()["status"] == "ready"
