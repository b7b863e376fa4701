"""The hot request without Flask's per-request machinery.

`GET /api/v1/lookup/<ip>` with no query string and no Accept-Language is most of a GeoIP
service's traffic. Flask's request context, routing, session and response objects cost several
times the lookup itself (bench/README.md, figure 2), so this WSGI middleware answers exactly
that request with the Flask view's own answer (`lookup_answer`: the same service, shaper, body
and headers), without routing anything itself. Everything else, including every error and every
domain name, goes to the Flask app unchanged, so the error handler stays the one place where
failures become responses. tests/test_fastpath.py checks that both paths give identical responses.
"""
from __future__ import annotations

from . import caching
from .headers import SECURITY_HEADERS, cors_headers
from .lookup_answer import lookup_answer

PREFIX = "/api/v1/lookup/"
_IP_CHARACTERS = frozenset("0123456789abcdefABCDEF:.")


class LookupFastPath:
    def __init__(self, flask_wsgi, services):
        self.flask_wsgi = flask_wsgi
        self.services = services
        # Failures go to Flask, which looks the target up again: with metrics on, only that second
        # attempt counts a failure (app/metrics/instruments.py).
        self.lookup = getattr(services.lookup, "first_try", services.lookup.lookup)
        self.headers = [*SECURITY_HEADERS, *cors_headers(services.config.cors_allow_origin, "GET", PREFIX)]
        self.answered = 0

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if (path.startswith(PREFIX) and environ.get("REQUEST_METHOD") == "GET"
                and not environ.get("QUERY_STRING") and "HTTP_ACCEPT_LANGUAGE" not in environ):
            target = path[len(PREFIX):]
            # IP literals only: a domain may wait on DNS, and its errors would then be resolved twice.
            if target and _IP_CHARACTERS.issuperset(target) and (":" in target or "." in target):
                try:
                    body, headers = lookup_answer(self.services, target, "en", lookup=self.lookup)
                except Exception:  # noqa: BLE001 - errors, even unexpected ones, get the app's one handler
                    return self.flask_wsgi(environ, start_response)
                self.answered += 1
                if caching.not_modified(environ.get("HTTP_IF_NONE_MATCH"), headers):
                    start_response("304 NOT MODIFIED", [*caching.not_modified_headers(headers), *self.headers])
                    return []
                start_response("200 OK", [*headers, *self.headers, ("Content-Length", str(len(body)))])
                return [body]
        return self.flask_wsgi(environ, start_response)
