"""The JSON API: /api/v1/lookup, /healthz, /readyz, the OpenAPI document and the legacy /<target>."""
from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, redirect, request, url_for

from ..document import preferred_language
from ..errors import BadRequest, BatchTooLarge, DatabaseUnavailable
from ..fields import parse_fields, select_document, select_items
from . import caching
from .arrival import arrived
from .client_address import client_address
from .lookup_answer import document_answer, lookup_answer
from .openapi import openapi_document
from .responses import json_response

api = Blueprint("api", __name__)


def services():
    return current_app.extensions["geoip"]


def language() -> str:
    return preferred_language(request.args.get("lang"), request.accept_languages)


def caller_address() -> str:
    address = client_address(request, services().config.trusted_proxies)
    if address is None:
        raise BadRequest("The caller's address is unknown.")
    return address


def _answer(answer) -> Response:
    body, headers = answer
    if caching.not_modified(request.headers.get("If-None-Match"), headers):
        return Response(status=304, headers=caching.not_modified_headers(headers))
    return Response(body, 200, headers=headers)


_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no", "")


def wants_hostname(value) -> bool:
    """?hostname= / "hostname" in a batch body: a yes or no, anything else is a bad request."""
    if value is None or value is False or value is True:
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise BadRequest('hostname must be 1 or 0 (true or false in a batch body).')


def lookup_options() -> dict:
    """?hostname= and ?fields=, checked before any lookup work."""
    return {"hostname": wants_hostname(request.args.get("hostname")), "selection": parse_fields(request.args.get("fields"))}


@api.get("/api/v1/lookup/me")
def lookup_me():
    options = lookup_options()
    found = services().lookup.lookup_address(caller_address(), language(), arrived(), hostname=options["hostname"])
    return _answer(document_answer(select_document(found, options["selection"])))


@api.get("/api/v1/lookup/<target:target>")
def lookup_target(target):
    return _answer(lookup_answer(services(), target, language(), arrived(), **lookup_options()))


@api.post("/api/v1/lookup")
def lookup_batch():
    try:
        payload = json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):  # invalid JSON or UTF-8, or nesting past the parser's depth
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("targets"), list):
        raise BadRequest('The body must be a JSON object like {"targets": ["8.8.8.8", "example.com"]}.')
    targets = payload["targets"]
    limit = services().config.batch_max
    if len(targets) > limit:
        raise BatchTooLarge(f"A batch may hold at most {limit} targets.")
    if not isinstance(payload.get("lang", ""), str):
        raise BadRequest('"lang" must be a language code such as "en" or "de".')
    lang = preferred_language(payload.get("lang") or request.args.get("lang"), request.accept_languages)
    hostname = wants_hostname(payload.get("hostname", request.args.get("hostname")))
    selection = parse_fields(payload.get("fields", request.args.get("fields")))
    items = services().lookup.lookup_many(targets, lang, arrived(), hostname=hostname)
    return json_response({"results": select_items(items, selection)})


@api.get("/healthz")
def healthz():
    return json_response({"status": "ok"})


@api.get("/readyz")
def readyz():
    report = services().readiness()
    return json_response(report, 200 if report["status"] != "unavailable" else 503)


@api.get("/api/v1/openapi.json")
def openapi():
    return json_response(openapi_document())


@api.get("/<target>")
def legacy_lookup(target):
    """The original app's route. Browsers get the page; API clients get the JSON document."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if best == "text/html" and "page.index" in current_app.view_functions:
        return redirect(url_for("page.index", q=target), 302)
    return _answer(lookup_answer(services(), target, language(), arrived(), **lookup_options()))
