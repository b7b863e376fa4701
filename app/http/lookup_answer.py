"""The one place a lookup's response is built, for the Flask views and the fast path alike.

`lookup_answer(services, target, lang)` runs the lookup through the service (which shapes the
document, document.py) and returns the body and the headers that belong to a lookup answer; the
callers only add what every response carries (headers.py) and send it. A header that depends on
the answer (caching, validators) goes here, once.
"""
from __future__ import annotations

import json

from ..fields import select_document
from . import caching
from .responses import JSON_TYPE, json_bytes

CONTENT_TYPE = JSON_TYPE + "; charset=utf-8"


def lookup_answer(services, target: str, lang: str, arrived: float | None = None, *, hostname: bool = False,
                  selection=None, lookup=None) -> tuple[bytes, list[tuple[str, str]]]:
    """(body, headers) of a 200 answer for one target; a GeoIPError for anything else. `arrived`:
    when the request came in (app/http/arrival.py), from which its DNS budget counts; `hostname`
    adds the results' host names; `selection` (fields.parse_fields) cuts the document; `lookup`:
    the service's lookup method to use (the fast path's counts only successes, app/metrics)."""
    found = (lookup or services.lookup.lookup)(target, lang, arrived, hostname=hostname)
    body, headers = document_answer(found if selection is None else select_document(found, selection), cache=None)
    options = f"{int(hostname)}|{json.dumps(selection, sort_keys=True) if selection is not None else ''}"
    return body, headers + caching.answer_headers(services, found, lang, options)


def document_answer(document: dict, cache=(caching.PRIVATE,)) -> tuple[bytes, list[tuple[str, str]]]:
    """(body, headers) of a 200 answer carrying a lookup document; `cache`: its caching headers
    (by default those of an answer about the caller, `me`)."""
    return json_bytes(document), [("Content-Type", CONTENT_TYPE), *(cache or ())]
