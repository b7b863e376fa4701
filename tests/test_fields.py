"""Field selection: paths checked against the document schema, documents cut down keeping their
structure, hostile `fields` values refused with INVALID_FIELDS and never echoed."""
from __future__ import annotations

import pytest

from app.errors import InvalidFields
from app.fields import DOCUMENT_PATHS, allowed_paths, parse_fields, select_document, select_items
from app.http.openapi import openapi_document


def test_allowed_paths_come_from_the_result_schema():
    schemas = openapi_document()["components"]["schemas"]
    paths = set(allowed_paths())
    for name, schema in schemas["Result"]["properties"].items():
        assert name in paths
        for child in schema.get("properties", {}):
            assert f"{name}.{child}" in paths
    assert {"subdivisions.iso_code", "timezone.local_time", "canonical_name"} <= paths
    assert not paths & {"query", "kind", "results", "database", "asn_database"}  # always kept, not selectable
    assert {"asn", "asn.number", "asn.organization", "asn.network"} <= paths


@pytest.fixture
def documents(client):
    ip = client.get("/api/v1/lookup/81.2.69.160").get_json()
    domain = client.get("/api/v1/lookup/unlocated.test.example").get_json()
    assert ip["results"][0]["subdivisions"] and domain["results"][0]["error"]
    return ip, domain


def test_selection_keeps_structure_and_only_the_named_paths(documents):
    ip, _ = documents
    before = repr(ip)
    selected = select_document(ip, parse_fields("city.name, country.iso_code,location,subdivisions.iso_code"))
    result = ip["results"][0]
    envelope = {key: value for key, value in ip.items() if key not in DOCUMENT_PATHS}
    assert selected == {**envelope, "results": [{
            "ip": result["ip"],
            "city": {"name": result["city"]["name"]},
            "subdivisions": [{"iso_code": s["iso_code"]} for s in result["subdivisions"]],
            "country": {"iso_code": result["country"]["iso_code"]},
            "location": result["location"],
        }]}
    assert {"query", "kind", "database", "asn_database"} <= set(selected)
    assert repr(ip) == before  # the shared blocks are untouched
    assert list(selected) == [key for key in ip if key not in DOCUMENT_PATHS]


def test_a_block_name_means_the_whole_block_in_either_order(documents):
    ip, _ = documents
    for text in ("city,city.name", "city.name,city"):
        assert select_document(ip, parse_fields(text))["results"][0]["city"] == ip["results"][0]["city"]


def test_document_level_paths_and_error_items(documents):
    _, domain = documents
    selected = select_document(domain, parse_fields("canonical_name,city"))
    assert selected["canonical_name"] == domain["canonical_name"] and "addresses_withheld" not in selected
    assert selected["results"] == domain["results"]  # an unlocated address keeps its error
    error_item = {"query": "x", "error": {"code": "INVALID_TARGET", "message": "m"}}
    assert select_items([error_item, domain], parse_fields(["city"]))[0] is error_item
    assert select_document(domain, None) is domain


HOSTILE = [
    "", ",", "city,", "nope", "city.nope", "city.name.deeper", "city..name", ".city", "__class__", "results",
    "query", "CITY.NAME", "city.name\x00", "<script>alert(1)</script>", "x" * 5000, ",".join(["city"] * 65),
    [], ["city", 1], [None], {"city": True}, 7, True, ["x" * 100] * 100,
]


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_are_refused_without_echo(raw):
    with pytest.raises(InvalidFields) as caught:
        parse_fields(raw)
    error = caught.value
    assert (error.code, error.status) == ("INVALID_FIELDS", 400)
    assert "city.name" in error.message and "timezone.local_time" in error.message
    if isinstance(raw, str) and raw not in ("city", "") and raw.strip(",") not in allowed_paths():
        assert raw not in error.message.replace(",".join(allowed_paths()), "")
