"""The OpenAPI 3.1 description of every route; the tests validate real responses against it."""
from __future__ import annotations

from functools import lru_cache

from ..document import LOCALES
from ..fields import selected_schemas
from ..overlay.geofeed import OVERLAY_FIELDS

_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_RESULT_REQUIRED = ("ip", "network", "city", "subdivisions", "country", "continent", "registered_country", "postal",
                    "location", "timezone", "asn", "overlay")  # hostname only when asked for


def _object(properties: dict, required=None, extra=False) -> dict:
    return {"type": "object", "properties": properties, "required": list(required or properties),
            "additionalProperties": extra}


def _error_response(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_SCHEMAS = {
    "Error": _object({"error": _object({"code": {"type": "string"}, "message": {"type": "string"}})}),
    "Named": _object({"name": _NULLABLE_STRING}),
    "TimeZone": _object({
        "name": _NULLABLE_STRING,
        "source": {"enum": ["mmdb", "tz_world", "overlay", None]},
        "utc_offset": {"type": ["string", "null"], "pattern": "^[+-][0-9]{2}:[0-9]{2}$"},
        "local_time": {"type": ["string", "null"]},
        "at_sea": {"type": "boolean"},
        "confidence": {"enum": ["exact", "approximate", None]},
        "degraded": {"type": "boolean"},
    }),
    "Result": _object({
        "ip": {"type": "string"},
        "network": {"type": "string"},
        "city": _object({"name": _NULLABLE_STRING, "geoname_id": _NULLABLE_INT}),
        "subdivisions": {"type": "array", "items": _object({"iso_code": _NULLABLE_STRING, "name": _NULLABLE_STRING})},
        "country": _object({"iso_code": _NULLABLE_STRING, "name": _NULLABLE_STRING,
                            "is_in_european_union": {"type": ["boolean", "null"]}}),
        "continent": _object({"code": _NULLABLE_STRING, "name": _NULLABLE_STRING}),
        "registered_country": _object({"iso_code": _NULLABLE_STRING, "name": _NULLABLE_STRING}),
        "postal": _object({"code": _NULLABLE_STRING}),
        "location": _object({"latitude": _NULLABLE_NUMBER, "longitude": _NULLABLE_NUMBER,
                             "accuracy_radius": _NULLABLE_INT}),
        "timezone": {"$ref": "#/components/schemas/TimeZone"},
        "asn": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Asn"}],
                "description": "Who announces the address's network; null without an ASN database "
                               "(GEOIP_ASN_DB) or when it does not know the address"},
        "overlay": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Overlay"}],
                    "description": "The overlay entry (GEOIP_OVERLAY, docs/overlay.md) that set fields of this "
                                   "result; null when none did"},
        "hostname": {"$ref": "#/components/schemas/Hostname"},
    }, required=_RESULT_REQUIRED),
    "Overlay": _object({
        "prefix": {"type": "string", "description": "The entry's prefix, e.g. 192.0.2.0/24"},
        "file": {"type": "string", "description": "The geofeed file it comes from"},
        "fields": {"type": "array", "items": {"enum": list(OVERLAY_FIELDS)}, "description": "What it sets"},
    }),
    "Hostname": _object({
        "name": {**_NULLABLE_STRING, "description": "The PTR name; null when there is none (see error)"},
        "verified": {"type": "boolean", "description": "The name's A/AAAA records contain the address "
                                                       "(forward-confirmed reverse DNS)"},
        "error": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Error/properties/error"}],
                  "description": "Why there is no name: PTR_NOT_FOUND, DNS_TIMEOUT, DNS_FAILURE, HOSTNAME_WITHHELD"},
    }, extra=False),
    "Asn": _object({
        "number": {**_NULLABLE_INT, "description": "Autonomous system number, e.g. 15169"},
        "organization": {**_NULLABLE_STRING, "description": "Its organisation, e.g. Google LLC"},
        "network": {"type": "string", "description": "The network the ASN database answers with (may differ "
                                                     "from the result's City network)"},
    }),
    "DatabaseBlock": {"oneOf": [{"type": "null"}, _object({
        "type": {"type": "string"}, "build_date": {"type": "string", "format": "date"},
        "source": {"type": "string"}, "attribution": _NULLABLE_STRING})]},
    "UnlocatedAddress": _object({"ip": {"type": "string"}, "error": {"$ref": "#/components/schemas/Error/properties/error"}}),
    "Document": _object({
        "query": {"type": "string"},
        "kind": {"enum": ["ip", "domain"]},
        "canonical_name": _NULLABLE_STRING,
        "results": {"type": "array", "minItems": 1, "items": {"oneOf": [
            {"$ref": "#/components/schemas/Result"}, {"$ref": "#/components/schemas/UnlocatedAddress"}]}},
        "addresses_withheld": {"type": "integer", "minimum": 0},
        "database": {"$ref": "#/components/schemas/DatabaseBlock"},
        "asn_database": {"$ref": "#/components/schemas/DatabaseBlock"},
    }),
    "BatchItemError": _object({"query": _NULLABLE_STRING, "error": {"$ref": "#/components/schemas/Error/properties/error"}}),
    "BatchRequest": {"type": "object", "required": ["targets"], "properties": {
        "targets": {"type": "array", "items": {"type": "string"}, "description": "IP addresses and domain names"},
        "lang": {"$ref": "#/components/schemas/Language"},
        "hostname": {"type": "boolean", "description": "Add each result's hostname (PTR, forward-confirmed); "
                                                       "the batch's DNS budget covers these lookups too"},
        "fields": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                   "description": "Only these paths of each result (as ?fields=)"}}},
    "BatchResponse": _object({"results": {"type": "array", "items": {"anyOf": [
        {"$ref": "#/components/schemas/Document"}, {"$ref": "#/components/schemas/SelectedDocument"},
        {"$ref": "#/components/schemas/BatchItemError"}]}}}),
    "Readiness": {"type": "object", "required": ["status", "problems", "database", "databases", "timezone"],
                  "properties": {
        "status": {"enum": ["ready", "degraded", "unavailable"]},
        "problems": {"type": "array", "items": {"type": "string"}, "description": "Why it is not ready"},
        "notes": {"type": "array", "items": {"type": "string"},
                  "description": "What is missing without making it less ready (an ASN file not installed yet)"},
        "database": {"type": "object", "required": ["path", "loaded", "error"], "description": "The City database"},
        "databases": {"type": "array", "items": {"type": "object", "required": ["kind", "configured", "loaded"],
                                                  "properties": {"kind": {"enum": ["city", "asn"]}}},
                      "description": "Every database: kind, type, build date, age, stale, source, reader"},
        "timezone": {"type": "object", "required": ["backend", "state"]},
    }},
    "MaxMindCity": {"type": "object", "required": ["traits"], "properties": {
        "traits": {"type": "object", "required": ["ip_address", "network"], "properties": {
            "autonomous_system_number": {"type": "integer"},
            "autonomous_system_organization": {"type": "string"}}}}},
    # Any string is accepted: an unknown language falls back (Accept-Language, then en) rather than fail.
    "Language": {"type": "string", "examples": list(LOCALES),
                 "description": "One of " + ", ".join(LOCALES) + " (any case); other values fall back."},
    "MaxMindError": _object({"code": {"type": "string"}, "error": {"type": "string"}}),
}

# What a document with ?fields= is: the same schemas with only what always stays required.
_SCHEMAS.update(selected_schemas(_SCHEMAS))

_LANG = {"name": "lang", "in": "query", "required": False, "schema": {"$ref": "#/components/schemas/Language"},
         "description": "Language of place names; otherwise Accept-Language, then en."}
_HOSTNAME = {"name": "hostname", "in": "query", "required": False, "schema": {"enum": ["1", "0", "true", "false"]},
             "description": "1 adds each result's hostname: the PTR name and whether it is forward-confirmed "
                            "(bounded by DNS_TIMEOUT; a failure never fails the lookup)."}
_FIELDS = {"name": "fields", "in": "query", "required": False, "schema": {"type": "string"},
           "description": "Only these comma-separated paths of each result, e.g. city.name,country.iso_code,asn "
                          "(a block name means the whole block); 400 INVALID_FIELDS names the allowed paths."}
_LOOKUP_PARAMETERS = [_LANG, _HOSTNAME, _FIELDS]

_LOOKUP_ERRORS = {
    "400": _error_response("INVALID_TARGET: not a valid IP address or domain name; INVALID_FIELDS: "
                           "fields names a path documents do not have"),
    "404": _error_response("IP_ADDRESS_NOT_FOUND or DOMAIN_NOT_FOUND"),
    "422": _error_response("IP_ADDRESS_RESERVED: a private, loopback or other special-purpose address"),
    "502": _error_response("DNS_FAILURE: the DNS servers failed"),
    "503": _error_response("DATABASE_UNAVAILABLE: no City database is loaded"),
    "504": _error_response("DNS_TIMEOUT: DNS did not answer within DNS_TIMEOUT"),
}


_DOCUMENT_OK = {"description": "OK (with ?fields=, only the selected paths)", "content": {"application/json": {
    "schema": {"anyOf": [{"$ref": "#/components/schemas/Document"}, {"$ref": "#/components/schemas/SelectedDocument"}]}}}}


def _ok(schema: str, description: str = "OK", content_type: str = "application/json") -> dict:
    return {"description": description, "content": {content_type: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _maxmind_error(description: str) -> dict:
    return {"description": description, "content": {
        "application/vnd.maxmind.com-error+json": {"schema": {"$ref": "#/components/schemas/MaxMindError"}}}}


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    target = {"name": "target", "in": "path", "required": True, "schema": {"type": "string"},
              "description": "An IPv4/IPv6 address or a domain name"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Easy GeoIP", "version": "1.0.0",
                 "description": "Where is this IP address or domain? City, region, country, coordinates, "
                                "network, time zone with local time, and who owns the network (ASN)."},
        "paths": {
            "/api/v1/lookup/{target}": {"get": {
                "operationId": "lookupTarget", "summary": "Look up an IP address or every address of a domain",
                "parameters": [target, *_LOOKUP_PARAMETERS],
                "responses": {"200": _DOCUMENT_OK, **_LOOKUP_ERRORS}}},
            "/api/v1/lookup/me": {"get": {
                "operationId": "lookupMe", "summary": "Look up the caller's own address",
                "parameters": _LOOKUP_PARAMETERS,
                "responses": {"200": _DOCUMENT_OK, **_LOOKUP_ERRORS}}},
            "/api/v1/lookup": {"post": {
                "operationId": "lookupBatch", "summary": "Look up many targets at once (results in input order)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/BatchRequest"}}}},
                "responses": {"200": _ok("BatchResponse"),
                              "400": _error_response("BAD_REQUEST: malformed JSON or body"),
                              "413": _error_response("BATCH_TOO_LARGE or PAYLOAD_TOO_LARGE")}}},
            "/geoip/v2.1/city/{ip}": {"get": {
                "operationId": "maxmindCity", "summary": "MaxMind GeoIP2 City web-service compatible",
                "parameters": [{"name": "ip", "in": "path", "required": True, "schema": {"type": "string"},
                                "description": "An IP address or `me`"}],
                "security": [{}, {"basic": []}],
                "responses": {
                    "200": _ok("MaxMindCity", content_type="application/vnd.maxmind.com-city+json"),
                    "400": _maxmind_error("IP_ADDRESS_INVALID or IP_ADDRESS_RESERVED"),
                    "401": _maxmind_error("AUTHORIZATION_INVALID"),
                    "404": _maxmind_error("IP_ADDRESS_NOT_FOUND"),
                    "503": _maxmind_error("DATABASE_UNAVAILABLE")}}},
            "/{target}": {"get": {
                "operationId": "legacyLookup", "summary": "The original app's route (JSON for API clients)",
                "parameters": [target, *_LOOKUP_PARAMETERS],
                "responses": {"200": _DOCUMENT_OK, "302": {"description": "Browsers are sent to the page"},
                              **_LOOKUP_ERRORS}}},
            "/healthz": {"get": {"operationId": "healthz", "summary": "The process is alive",
                                 "responses": {"200": {"description": "alive", "content": {"application/json": {
                                     "schema": _object({"status": {"const": "ok"}})}}}}}},
            "/readyz": {"get": {"operationId": "readyz", "summary": "Every database's and the time-zone backend's state",
                                "responses": {"200": _ok("Readiness", "ready or degraded"),
                                              "503": _ok("Readiness", "no City database loaded")}}},
            "/api/v1/openapi.json": {"get": {"operationId": "openapi", "summary": "This document",
                                             "responses": {"200": {"description": "OpenAPI 3.1 document",
                                                                   "content": {"application/json": {}}}}}},
        },
        "components": {"schemas": _SCHEMAS, "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
    }
