"""Arbitrary strings as targets and batch items never give a 5xx."""
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def client(make_app):
    # DNS answers instantly from the local server; unknown names are NXDOMAIN.
    return make_app(dns_timeout=0.3).test_client()


@SETTINGS
@given(st.text(max_size=300))
def test_any_path_target(client, text):
    response = client.get("/api/v1/lookup/" + quote(text, safe=""))
    assert response.status_code < 500 or response.get_json()["error"]["code"] in ("DNS_TIMEOUT", "DNS_FAILURE")
    assert response.is_json


@SETTINGS
@given(st.lists(st.one_of(st.text(max_size=80), st.integers(), st.none(), st.floats(allow_nan=False),
                          st.lists(st.text(max_size=5), max_size=2), st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)),
                max_size=20))
def test_any_batch(client, items):
    response = client.post("/api/v1/lookup", data=json.dumps({"targets": items}), content_type="application/json")
    assert response.status_code == 200
    assert len(response.get_json()["results"]) == len(items)


@SETTINGS
@given(st.binary(max_size=200))
def test_any_body(client, body):
    response = client.post("/api/v1/lookup", data=body, content_type="application/json")
    assert response.status_code in (200, 400, 413)


@SETTINGS
@given(st.text(max_size=100))
def test_any_compat_target(client, text):
    response = client.get("/geoip/v2.1/city/" + quote(text, safe=""))
    assert response.status_code < 500
