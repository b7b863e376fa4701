"""The OpenAPI 3.1 description of every route; the tests validate real responses against it."""
from __future__ import annotations

from functools import lru_cache

from ..document import LOCALES
from ..document_shape import component_schemas


def _object(properties: dict, required=None, extra=False) -> dict:
    return {"type": "object", "properties": properties, "required": list(required or properties),
            "additionalProperties": extra}


def _error_response(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


# The document, its results and blocks, the error bodies and their "Selected" forms come from
# the declaration of a document's shape (app/document_shape.py); the rest is the HTTP layer's.
_SCHEMAS = {
    **component_schemas(),
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
