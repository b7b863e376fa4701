"""Real documents have exactly the shape app/document_shape.py declares: at every level the
declared keys (no more, none missing) and values of the declared types, for every kind of
document the lookup service makes (City only, ASN only, both, overlay-touched, hostnames,
domains with several results, batch items, error bodies), from the service itself and over HTTP
(the fast path and Flask). The same documents validate against the served OpenAPI document,
which is generated from that declaration, and between them they exercise every declared field
with a value and every nullable one with null, so a field shaped in app/document.py without its
declaration, or declared and never made, fails here."""
from __future__ import annotations

import copy
import json

import pytest

from app import create_app
from app.config import Config
from app.document_shape import (BATCH_ITEM_ERROR, COMPONENTS, CUT, DOCUMENT, ERROR, Block, ListOf, OneOf,
                                blocks, component_schemas)
from app.fields import allowed_paths
from app.http.openapi import openapi_document
from tests.support.city_fixtures import STANDARD_ASN, STANDARD_RECORDS, write_asn_db, write_city_db
from tests.support.openapi_check import validate_response

_JSON_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}


def problems(value, shape, path: str = "$", *, nullable: bool = False, cut: bool = False, seen=None) -> list[str]:
    """How `value` differs from the declared `shape` (a Block, ListOf, OneOf or Scalar). `cut`: a
    document cut down by ?fields=, which may lack what is not always kept. `seen` collects
    (block, field name, is null) for each field met."""
    if value is None:
        return [] if nullable else [f"{path}: null, not declared nullable"]
    if isinstance(shape, Block):
        if shape.component is not None and shape.component not in CUT:
            cut = False  # kept whole by ?fields= (an unlocated address, a database block, an error)
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, declared an object"]
        found = [f"{path}.{name}: not declared" for name in value if name not in shape.fields]
        for name, field in shape.fields.items():
            if name not in value:
                if not field.optional and not (cut and not field.always):
                    found.append(f"{path}.{name}: missing")
                continue
            if seen is not None:
                seen.add((shape, name, value[name] is None))
            found += problems(value[name], field.value, f"{path}.{name}", nullable=field.nullable, cut=cut, seen=seen)
        return found
    if isinstance(shape, ListOf):
        if type(value) is not list:
            return [f"{path}: {type(value).__name__}, declared a list"]
        found = [f"{path}: {len(value)} items, declared at least {shape.min_items}"] if len(value) < shape.min_items else []
        for index, item in enumerate(value):
            found += problems(item, shape.items, f"{path}[{index}]", cut=cut, seen=seen)
        return found
    if isinstance(shape, OneOf):
        attempts = []
        for choice in shape.choices:
            marks: set = set()
            found = problems(value, choice, path, cut=cut, seen=marks)
            if not found:
                if seen is not None:
                    seen.update(marks)
                return []
            attempts.append(found)
        return min(attempts, key=len)
    if shape.type is None:
        return [] if value in shape.enum else [f"{path}: {value!r} is not one of {shape.enum}"]
    if type(value) not in _JSON_TYPES[shape.type]:
        return [f"{path}: {type(value).__name__} {value!r}, declared {shape.type}"]
    return []


BATCH_ITEM = OneOf((DOCUMENT, BATCH_ITEM_ERROR))


# -- the documents ---------------------------------------------------------------------------
# Records the standard fixtures lack: regions and a country without names or codes, an ASN record
# without an organization and one without a number.
EXTRA_CITY = {"7.7.0.0/16": {"country": {"iso_code": "US"}, "location": {"latitude": 40.7},
                             "subdivisions": [{"iso_code": "NY"}, {"names": {"en": "Kings"}}]}}
EXTRA_ASN = {"7.7.0.0/16": (64500, None), "4.4.0.0/16": (None, "Nobody Numbered Ltd")}

FEED = """# offices and VPN ranges
81.2.69.176/28,FR,FR-IDF,Paris,,48.8566,2.3522,5,
10.8.0.0/16,NL,NL-NH,Amsterdam,,52.3676,4.9041,3,
10.9.0.0/16,DE,DE-BE,Berlin,,,,,Europe/Berlin
4.4.4.0/24,US,US-CA,,94016
"""

LOOKUPS = [
    # (target, hostname): addresses both databases know, City only, ASN only, overlay-touched
    ("81.2.69.160", False), ("9.9.9.9", False), ("8.8.4.4", False), ("2001:4860::1", False),
    ("2.2.3.4", False), ("2a02:d5c0::1", False), ("2001:218::1", False), ("3.0.0.1", False), ("5.5.5.5", False),
    ("6.6.6.6", False), ("7.7.7.7", False), ("81.2.69.180", False), ("10.8.1.2", False), ("10.9.1.2", False),
    ("4.4.4.4", False),
    # domains: several results, withheld addresses, an unlocated address, a CNAME chain
    ("paris.test.example", False), ("mixed.test.example", False), ("unlocated.test.example", False),
    ("www.alias.test.example", False), ("dual.test.example", False),
    # hostnames: confirmed, not confirmed, no PTR, withheld, silent forward lookup, a domain's
    ("81.2.69.160", True), ("81.2.69.161", True), ("81.2.69.170", True), ("10.8.1.2", True),
    ("81.2.69.190", True), ("dual.test.example", True),
]
BATCHES = [
    ["81.2.69.160", "paris.test.example", "x", 3, "10.0.0.1", "unlocated.test.example", "nope.test.example",
     "8.8.8.8", "\x07bell", "y" * 300],
]
ERRORS = [("/api/v1/lookup/8.8.8", 400), ("/api/v1/lookup/8.8.8.8", 404), ("/api/v1/lookup/10.0.0.1", 422),
          ("/api/v1/lookup/nope.test.example", 404), ("/api/v1/lookup/me", 422),
          ("/api/v1/lookup/81.2.69.160?fields=nope", 400)]
SELECTIONS = [("81.2.69.160", "city.name,asn,canonical_name"), ("81.2.69.170", "hostname.error.code"),
              ("unlocated.test.example", "subdivisions.name,addresses_withheld")]


class Documents:
    def __init__(self):
        self.items: list[tuple[str, object, object, bool]] = []  # (label, value, shape, cut)
        self.responses: list[tuple[str, str, int, object]] = []  # (OpenAPI path, method, status, body)

    def add(self, label, value, shape, cut=False):
        self.items.append((label, value, shape, cut))

    def response(self, path, method, status, body):
        self.responses.append((path, method, status, body))


def _app(tmp, dns_server, **config):
    nameservers = Config.from_env({"DNS_NAMESERVERS": dns_server.nameserver}).dns_nameservers
    return create_app(Config(city_db_copy_dir=str(tmp / "copies"), dns_nameservers=nameservers, dns_timeout=2.0,
                             **config))


@pytest.fixture(scope="module")
def documents(tmp_path_factory, dns_server) -> Documents:
    tmp = tmp_path_factory.mktemp("document-shape")
    (tmp / "overlay").mkdir()
    (tmp / "overlay" / "offices.csv").write_text(FEED)
    city = write_city_db(tmp / "city.mmdb", {**STANDARD_RECORDS, **EXTRA_CITY})
    asn = write_asn_db(tmp / "asn.mmdb", {**STANDARD_ASN, **EXTRA_ASN})
    full = _app(tmp, dns_server, city_db_path=str(city), asn_db_path=str(asn), overlay_sources=(str(tmp / "overlay"),))
    # No ASN file, a City file of a source with no attribution, a time-zone backend that is down.
    other = write_city_db(tmp / "other.mmdb", {**STANDARD_RECORDS, **EXTRA_CITY}, database_type="Acme-City")
    degraded = _app(tmp, dns_server, city_db_path=str(other), tz_database_url="postgresql://127.0.0.1:1/none")
    found = Documents()
    for app in (full, degraded):
        client, service = app.test_client(), app.extensions["geoip"].lookup
        for target, hostname in LOOKUPS:
            label = f"{target}{' hostname' if hostname else ''} ({'ASN+overlay' if app is full else 'degraded'})"
            response = client.get(f"/api/v1/lookup/{target}", query_string={"hostname": "1"} if hostname else {})
            if response.status_code != 200:
                assert app is degraded and target in ("8.8.4.4", "2001:4860::1", "4.4.4.4", "10.8.1.2", "10.9.1.2"), \
                    (label, response.status_code)
                continue
            body = response.get_json()
            found.response("/api/v1/lookup/{target}", "get", 200, body)
            from_service = service.lookup(target, hostname=hostname)
            for source, document in (("http", body), ("service", from_service)):
                located = [result for result in document["results"] if "error" not in result]
                assert all(("hostname" in result) is hostname for result in located), (label, source)
                found.add(f"{label} {source}", document, DOCUMENT)
        legacy = client.get("/81.2.69.160", headers={"Accept": "application/json"}).get_json()
        found.add("legacy route", legacy, DOCUMENT)
        for targets in BATCHES:
            for hostname in (False, True):
                response = client.post("/api/v1/lookup", json={"targets": targets, "hostname": hostname})
                found.response("/api/v1/lookup", "post", 200, response.get_json())
                for index, item in enumerate(response.get_json()["results"]):
                    found.add(f"batch item {index} hostname={hostname}", item, BATCH_ITEM)
                for index, item in enumerate(service.lookup_many(targets, hostname=hostname)):
                    found.add(f"lookup_many item {index}", item, BATCH_ITEM)
        for url, status in ERRORS:
            response = client.get(url)
            assert response.status_code == status, url
            found.response("/api/v1/lookup/{target}", "get", status, response.get_json())
            found.add(f"error {url}", response.get_json(), ERROR)
        for target, fields in SELECTIONS:
            body = client.get(f"/api/v1/lookup/{target}", query_string={"fields": fields, "hostname": "1"}).get_json()
            found.response("/api/v1/lookup/{target}", "get", 200, body)
            found.add(f"{target} fields={fields}", body, DOCUMENT, cut=True)
            if fields == "hostname.error.code":  # a cut-down block inside a cut-down block
                assert body["results"] == [{"ip": target, "hostname": {"error": {"code": "PTR_NOT_FOUND"}}}]
    unavailable = _app(tmp, dns_server, city_db_path=str(tmp / "absent.mmdb")).test_client().get("/api/v1/lookup/1.1.1.1")
    assert unavailable.status_code == 503
    found.add("no City database", unavailable.get_json(), ERROR)
    found.response("/api/v1/lookup/{target}", "get", 503, unavailable.get_json())
    return found


def test_every_document_has_exactly_the_declared_keys_and_types(documents):
    assert len(documents.items) > 100
    found = []
    for label, value, shape, cut in documents.items:
        found += [f"{label}: {problem}" for problem in problems(value, shape, cut=cut)]
    assert not found, "\n".join(found)


def test_every_response_is_valid_against_the_served_openapi(documents):
    assert len(documents.responses) > 50
    for path, method, status, body in documents.responses:
        validate_response(path, method, status, body)


def _declared_fields():
    return [(block, name, field) for block in blocks(DOCUMENT, BATCH_ITEM_ERROR, ERROR)
            for name, field in block.fields.items()]


# Declared nullable and never null in a document made here: no document is made without a City
# database loaded (that lookup is a 503), but a swap may leave none serving between the lookup
# and the document's envelope.
NEVER_NULL_HERE = {(DOCUMENT, "database")}


def test_the_documents_exercise_every_declared_field(documents):
    seen: set = set()
    for _, value, shape, cut in documents.items:
        problems(value, shape, cut=cut, seen=seen)
    missing = [f"{block!r}.{name} with a value" for block, name, _ in _declared_fields() if (block, name, False) not in seen]
    missing += [f"{block!r}.{name} null" for block, name, field in _declared_fields()
                if field.nullable and (block, name, True) not in seen and (block, name) not in NEVER_NULL_HERE]
    assert not missing, missing


# -- the checker and the generated schemas -------------------------------------------------
@pytest.fixture(scope="module")
def london(documents):
    return next(value for label, value, _, _ in documents.items if label.startswith("81.2.69.160 hostname"))


@pytest.mark.parametrize("damage, expected", [
    (lambda d: d["results"][0]["city"].update(population=8_000_000), "$.results.city.population: not declared"),
    (lambda d: d["results"][0].update(isp="x"), "$.results.isp: not declared"),
    (lambda d: d["results"][0]["location"].pop("latitude"), "$.results.location.latitude: missing"),
    (lambda d: d["results"][0]["asn"].update(number="15169"), "$.results.asn.number: str '15169', declared integer"),
    (lambda d: d["results"][0]["timezone"].update(at_sea=None), "$.results.timezone.at_sea: null, not declared"),
    (lambda d: d["results"][0]["timezone"].update(source="guess"), "$.results.timezone.source: 'guess' is not one"),
    (lambda d: d["results"][0]["hostname"].update(verified=1), "$.results.hostname.verified: int 1, declared boolean"),
    (lambda d: d["results"][0]["country"].update(is_in_european_union=0), "is_in_european_union: int 0"),
    (lambda d: d.update(addresses_withheld=True), "$.addresses_withheld: bool True, declared integer"),
    (lambda d: d.update(results=[]), "$.results: 0 items, declared at least 1"),
])
def test_the_checker_catches_an_undeclared_or_wrong_field(london, damage, expected):
    assert not problems(london, DOCUMENT)
    damaged = copy.deepcopy(london)
    damage(damaged)
    found = problems(json.loads(json.dumps(damaged)), DOCUMENT)
    assert any(expected in problem.replace("[0]", "") for problem in found), found


def test_the_served_schemas_are_the_declared_ones(client):
    served = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    generated = json.loads(json.dumps(component_schemas()))
    assert {name: served[name] for name in generated} == generated
    assert set(COMPONENTS) == {"Document", "Result", "UnlocatedAddress", "TimeZone", "Asn", "Overlay", "Hostname",
                               "DatabaseBlock", "BatchItemError", "Error"}
    assert CUT == {"Document", "Result", "TimeZone", "Asn", "Overlay", "Hostname"}
    assert served["Result"]["required"] == [name for name in served["Result"]["properties"] if name != "hostname"]
    assert served["SelectedResult"]["required"] == ["ip"]
    assert served["SelectedDocument"]["required"] == ["query", "kind", "results", "database", "asn_database"]
    assert served["Result"]["properties"]["asn"]["oneOf"] == [{"type": "null"}, {"$ref": "#/components/schemas/Asn"}]
    assert served["SelectedResult"]["properties"]["asn"]["oneOf"][1] == {"$ref": "#/components/schemas/SelectedAsn"}
    assert served["Result"]["properties"]["location"]["properties"]["latitude"]["type"] == ["number", "null"]
    # Every declared property says what it is, at every level.
    pending = list(generated.items())
    while pending:
        name, schema = pending.pop()
        for field, property_schema in schema.get("properties", {}).items():
            assert property_schema.get("description"), (name, field)
            for inner in (property_schema, property_schema.get("items", {}), *property_schema.get("oneOf", ())):
                pending.append((f"{name}.{field}", inner))
    assert openapi_document()["components"]["schemas"]["Document"] == served["Document"]


def test_selection_paths_are_the_declared_fields():
    paths = allowed_paths()
    assert paths[:2] == ("canonical_name", "addresses_withheld")
    assert {"ip", "city.name", "subdivisions.iso_code", "asn.network", "hostname.error.code", "overlay.fields"} <= set(paths)
    assert not set(paths) & {"query", "kind", "results", "database", "asn_database", "overlay.fields.country"}
