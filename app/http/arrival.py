"""When a request arrived, stamped into the WSGI environ before Flask does any work on it.

Time budgets (DNS_TIMEOUT, the batch's DNS budget) count from this reading of the resolver's
clock, so the time a request spends in Flask before its lookup starts is part of its budget.
"""
from __future__ import annotations

from flask import request

from ..deadline import Clock

ENVIRON_KEY = "easy_geoip.arrived"


class ArrivalStamp:
    def __init__(self, wsgi_app, clock: Clock):
        self.wsgi_app = wsgi_app
        self.clock = clock

    def __call__(self, environ, start_response):
        environ[ENVIRON_KEY] = self.clock()
        return self.wsgi_app(environ, start_response)


def arrived() -> float | None:
    """The current request's arrival (None for a request that came in some other way)."""
    return request.environ.get(ENVIRON_KEY)
