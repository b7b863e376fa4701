"""HTTP experiment (figure 2): what the lookup route costs without Flask's per-request machinery.

A bare WSGI callable in front of the real app: `GET /api/v1/lookup/<ip-or-name>` with no query
string and no Accept-Language goes straight to the same LookupService and the same JSON bytes,
with the same headers the app sets; every other request (and every error) goes to the Flask app
unchanged. The bench serves this module through the same Nginx and uWSGI (stack.py) to measure
how much of the gap to the trivial ceiling such a fast path would close. Not used by the app.
"""
from __future__ import annotations

import orjson

from app import create_app
from app.errors import GeoIPError

flask_app = create_app()
_lookup = flask_app.extensions["geoip"].lookup.lookup
_PREFIX = "/api/v1/lookup/"
_HEADERS = [("Content-Type", "application/json; charset=utf-8"), ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"), ("X-Frame-Options", "DENY")]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if (environ.get("REQUEST_METHOD") == "GET" and path.startswith(_PREFIX) and not environ.get("QUERY_STRING")
            and "HTTP_ACCEPT_LANGUAGE" not in environ):
        target = path[len(_PREFIX):]
        if target and "/" not in target and target != "me":
            try:
                body = orjson.dumps(_lookup(target, "en"))
            except GeoIPError:
                return flask_app(environ, start_response)  # errors: the app's one error handler
            start_response("200 OK", _HEADERS + [("Content-Length", str(len(body)))])
            return [body]
    return flask_app(environ, start_response)
