"""Schemathesis against /api/v1/openapi.json: every operation, generated requests, no 5xx, every
response as the document declares it.

The app runs in-process through its WSGI interface (the same `create_app` uWSGI loads) with a
real City database file and the real DNS server on 127.0.0.1, so generated domain names are
really resolved. Schemathesis generates schema-valid and schema-violating requests (its default
"all" mode) and runs all its checks, among them: not_a_server_error, status_code_conformance,
content_type_conformance, response_schema_conformance, negative_data_rejection, and the
undeclared-method check (405 with `Allow`).

One setting differs from schemathesis' defaults, on purpose: positive_data_acceptance also
accepts 400 and 422. A target is declared as a string because "an IP address or a domain name"
is not expressible as a JSON Schema; a random string is schema-valid yet not a target, and the
contract for it is 400 INVALID_TARGET (and 422 for a reserved address), which
response_schema_conformance still checks.

Random strings are rarely lookup-able, so a second test draws targets the database and the DNS
zone know (addresses inside the fixture's networks, reserved addresses, zone names) and runs the
same schemathesis checks on them: that covers the 200 documents and the domain paths.

The module counts the generated cases; `test_at_least_1000_cases` checks the issue's minimum
(it needs the whole module to run, as CI does).
"""
from __future__ import annotations

import collections
import ipaddress

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from app import create_app
from app.config import Config
from tests.support.city_fixtures import STANDARD_RECORDS, write_city_db
from tests.support.dns_server import STANDARD_ZONE

CASES: collections.Counter = collections.Counter()  # operation label -> cases run
STATUSES: collections.Counter = collections.Counter()

# 8 operations; the ones with free-form parameters reach this many, the fixed ones exhaust sooner.
EXAMPLES_PER_OPERATION = 200

SCHEMATHESIS_CONFIG = {
    "checks": {
        "positive_data_acceptance": {
            "expected-statuses": ["2xx", "3xx", "400", "401", "404", "422", "502", "503", "504"],
        },
    },
    # A batch answers per item: a non-string item gets its own INVALID_TARGET and the others are
    # still looked up. Schemathesis would call that "schema-violating data accepted", so this one
    # check is off for the batch and `_check_batch_refusal` states the rule it follows instead.
    "operations": [{"include-operation-id": "lookupBatch", "checks": {"negative_data_rejection": {"enabled": False}}}],
}


@pytest.fixture(scope="module")
def geoip_app(tmp_path_factory, dns_server):
    city = write_city_db(tmp_path_factory.mktemp("schemathesis") / "city.mmdb")
    config = Config(city_db_path=str(city), city_db_check_interval=0.5, dns_timeout=1.0,
                    dns_nameservers=Config.from_env({"DNS_NAMESERVERS": dns_server.nameserver}).dns_nameservers)
    return create_app(config)


def _served_document() -> dict:
    """The document exactly as GET /api/v1/openapi.json serves it (no City DB or DNS needed)."""
    response = create_app(Config(city_db_path="/nonexistent/city.mmdb")).test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


# Loaded at collection time from the served document; each case is sent to `geoip_app`.
schema = schemathesis.openapi.from_dict(_served_document(), config=SchemathesisConfig.from_dict(SCHEMATHESIS_CONFIG))


@pytest.fixture(scope="module")
def api_schema():
    return schema


def _run(case, app):
    response = case.call_and_validate(app=app)
    CASES[case.operation.label] += 1
    STATUSES[response.status_code] += 1
    return response


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_conform(case, geoip_app):
    response = _run(case, geoip_app)
    if case.operation.label == "POST /api/v1/lookup" and case.method.upper() == "POST":
        _check_batch_refusal(case.body, response)


def _valid_options(body: dict) -> bool:
    from app.errors import GeoIPError
    from app.fields import parse_fields
    from app.http.api import wants_hostname
    try:
        wants_hostname(body.get("hostname"))
        parse_fields(body.get("fields"))
    except GeoIPError:
        return False
    return True


def _check_batch_refusal(body, response) -> None:
    """A body that is not {"targets": [...], "lang"?: str, "hostname"?: bool, "fields"?: paths} is
    refused whole; any other body is answered item by item, one result per target, in order."""
    well_formed = (isinstance(body, dict) and isinstance(body.get("targets"), list)
                   and isinstance(body.get("lang", ""), str) and len(body["targets"]) <= 1000
                   and _valid_options(body))
    if not well_formed:
        assert response.status_code in (400, 413), (body, response.status_code)
        return
    assert response.status_code == 200, (body, response.status_code)
    results = response.json()["results"]
    assert len(results) == len(body["targets"])
    for target, item in zip(body["targets"], results):
        if not isinstance(target, str):
            assert item == {"query": None, "error": {"code": "INVALID_TARGET", "message": item["error"]["message"]}}


# -- targets the data knows about ----------------------------------------------------------------

def _addresses_in(cidr: str):
    network = ipaddress.ip_network(cidr)
    return st.integers(0, network.num_addresses - 1).map(lambda offset: str(network.network_address + offset))


KNOWN_TARGETS = st.one_of(
    st.sampled_from(sorted(STANDARD_RECORDS)).flatmap(_addresses_in),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.sampled_from(sorted(STANDARD_ZONE)),
    st.sampled_from(["10.0.0.1", "127.0.0.1", "::1", "fe80::1", "192.168.1.1", "224.0.0.1", "2001:db8::1"]),
)
LANGS = st.sampled_from(["en", "de", "es", "fr", "ja", "pt-BR", "ru", "zh-CN", "xx", "DE"])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=KNOWN_TARGETS, lang=LANGS, route=st.sampled_from(["/api/v1/lookup/{target}", "/{target}"]))
def test_known_targets_conform(api_schema, geoip_app, target, lang, route):
    operation = api_schema[route]["GET"]
    response = _run(operation.Case(path_parameters={"target": target}, query={"lang": lang},
                                   headers={"Accept": "application/json"}), geoip_app)
    assert response.status_code in (200, 404, 422), (target, response.status_code)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(targets=st.lists(KNOWN_TARGETS | st.text(max_size=40), max_size=12), lang=LANGS)
def test_known_batches_conform(api_schema, geoip_app, targets, lang):
    operation = api_schema["/api/v1/lookup"]["POST"]
    response = _run(operation.Case(body={"targets": targets, "lang": lang}, media_type="application/json"), geoip_app)
    assert response.status_code == 200


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(address=st.sampled_from(sorted(STANDARD_RECORDS)).flatmap(_addresses_in) | st.ip_addresses().map(str))
def test_known_addresses_conform_on_the_maxmind_endpoint(api_schema, geoip_app, address):
    operation = api_schema["/geoip/v2.1/city/{ip}"]["GET"]
    response = _run(operation.Case(path_parameters={"ip": address}), geoip_app)
    assert response.status_code in (200, 400, 404)


def test_at_least_1000_cases():
    if not CASES:
        pytest.skip("counts the cases of this module's other tests: run the whole module")
    total = sum(CASES.values())
    print(f"\nschemathesis: {total} cases over {len(CASES)} operations: {dict(CASES)}; statuses {dict(STATUSES)}")
    assert len(CASES) == 8, sorted(CASES)  # every operation of the document was exercised
    assert total >= 1000
    assert not any(status >= 500 for status in STATUSES), STATUSES
    assert STATUSES[200] >= 100  # the success path really was checked, not only the refusals
