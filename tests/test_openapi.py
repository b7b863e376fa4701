"""The OpenAPI document is valid and real responses conform to it."""
import json

import jsonschema
import pytest

from tests.support.openapi_check import validate_response


def test_document_is_served_and_well_formed(client):
    response = client.get("/api/v1/openapi.json")
    doc = response.get_json()
    assert response.status_code == 200 and doc["openapi"] == "3.1.0"
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["operationId"] and operation["responses"], (path, method)


@pytest.mark.parametrize("url, path, status", [
    ("/api/v1/lookup/81.2.69.160", "/api/v1/lookup/{target}", 200),
    ("/api/v1/lookup/2.2.3.4", "/api/v1/lookup/{target}", 200),
    ("/api/v1/lookup/5.5.5.5", "/api/v1/lookup/{target}", 200),
    ("/api/v1/lookup/6.6.6.6", "/api/v1/lookup/{target}", 200),
    ("/api/v1/lookup/paris.test.example", "/api/v1/lookup/{target}", 200),
    ("/api/v1/lookup/mixed.test.example", "/api/v1/lookup/{target}", 200),
    ("/api/v1/lookup/unlocated.test.example", "/api/v1/lookup/{target}", 200),
    ("/api/v1/lookup/8.8.8", "/api/v1/lookup/{target}", 400),
    ("/api/v1/lookup/8.8.8.8", "/api/v1/lookup/{target}", 404),
    ("/api/v1/lookup/nope.test.example", "/api/v1/lookup/{target}", 404),
    ("/api/v1/lookup/10.0.0.1", "/api/v1/lookup/{target}", 422),
    ("/api/v1/lookup/me", "/api/v1/lookup/me", 422),
    ("/81.2.69.160", "/{target}", 200),
    ("/healthz", "/healthz", 200),
    ("/readyz", "/readyz", 200),
    ("/geoip/v2.1/city/81.2.69.160", "/geoip/v2.1/city/{ip}", 200),
    ("/geoip/v2.1/city/8.8.8.8", "/geoip/v2.1/city/{ip}", 404),
    ("/geoip/v2.1/city/x", "/geoip/v2.1/city/{ip}", 400),
])
def test_get_responses_conform(client, url, path, status):
    response = client.get(url, headers={"Accept": "application/json"})
    assert response.status_code == status
    validate_response(path, "get", status, response.get_json())


def test_batch_responses_conform(client):
    body = {"targets": ["81.2.69.160", "paris.test.example", "x", 3, "10.0.0.1", "unlocated.test.example"]}
    response = client.post("/api/v1/lookup", data=json.dumps(body), content_type="application/json")
    validate_response("/api/v1/lookup", "post", 200, response.get_json())
    response = client.post("/api/v1/lookup", data="{", content_type="application/json")
    validate_response("/api/v1/lookup", "post", 400, response.get_json())


def test_validation_catches_a_wrong_document():
    with pytest.raises(jsonschema.ValidationError):
        validate_response("/api/v1/lookup/{target}", "get", 200, {"query": "x", "kind": "ip", "results": []})


def test_readyz_without_database_conforms(make_app, tmp_path):
    response = make_app(city_db_path=str(tmp_path / "none.mmdb")).test_client().get("/readyz")
    validate_response("/readyz", "get", 503, response.get_json())
