"""The cheapest WSGI app uWSGI can run: the HTTP ceiling under the plain stack (plain_stack.py),
and, through Easy GeoIP's own Nginx and uWSGI configs, the row that shows what those configs cost.
The bench starts it instead of `app.wsgi` (never mounted in the real app).

The body is a fixed JSON document about the size of a lookup result, so Nginx, gzip and the
socket move a comparable number of bytes.
"""
from __future__ import annotations

import json

MODULE = "bench.trivial_app:application"
LOOKUPBODY_BYTES = 900  # a GeoLite2 city result is 850-1000 bytes


def _body() -> bytes:
    document = {"query": "203.0.113.7", "kind": "ip", "canonical_name": None,
                "results": [{"ip": "203.0.113.7", "network": "203.0.113.0/24", "padding": ""}]}
    size = len(json.dumps(document, separators=(",", ":")))
    document["results"][0]["padding"] = "x" * (LOOKUPBODY_BYTES - size)
    return json.dumps(document, separators=(",", ":")).encode()


BODY = _body()
_HEADERS = [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def application(environ, start_response):
    start_response("200 OK", list(_HEADERS))
    return [BODY]
