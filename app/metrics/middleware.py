"""The outermost WSGI layer: counts and times every request by route and status, and answers
GET /metrics to the addresses in METRICS_ALLOW (default loopback) only.

REMOTE_ADDR is Nginx's $remote_addr after its realip module has walked X-Forwarded-For through
TRUSTED_PROXIES, so a client cannot claim an allowed address. Anyone else gets the same 404 as
any unknown path: /metrics is not advertised to the public.
"""
from __future__ import annotations

import ipaddress
import time

from ..errors import NotFound
from ..http.headers import SECURITY_HEADERS
from ..http.responses import json_bytes
from . import CONTENT_TYPE

METRICS_PATH = "/metrics"
_EXACT_ROUTES = {
    "/": "page", "/healthz": "healthz", "/readyz": "readyz", METRICS_PATH: "metrics",
    "/api/v1/openapi.json": "openapi", "/api/v1/lookup": "batch", "/api/v1/lookup/me": "lookup_me",
    "/favicon.ico": "static",
}
_PREFIX_ROUTES = (("/api/v1/lookup/", "lookup"), ("/geoip/v2.1/city/", "geoip_city"), ("/static/", "static"))


def route_of(path: str) -> str:
    """A route name for a path: a small fixed set, never the path itself."""
    route = _EXACT_ROUTES.get(path)
    if route is not None:
        return route
    for prefix, name in _PREFIX_ROUTES:
        if path.startswith(prefix):
            return name
    if path.count("/") == 1:
        return "legacy_lookup"  # /<target>
    return "other"


class MetricsMiddleware:
    def __init__(self, app, metrics, allow, before_render=None):
        self.app = app
        self.metrics = metrics
        self.allow = tuple(allow)
        self.before_render = before_render
        self._requests: dict = {}
        self._latency: dict = {}

    def __getattr__(self, name):  # transparent: the layers below stay reachable (app.wsgi_app.answered)
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        path = environ.get("PATH_INFO", "")
        statuses = []

        def recording_start_response(status, headers, exc_info=None):
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            if path == METRICS_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
                return self._metrics(environ, recording_start_response)
            return self.app(environ, recording_start_response)
        finally:
            self._record(route_of(path), statuses[-1][:3] if statuses else "500", time.perf_counter() - started)

    def _record(self, route: str, status: str, seconds: float) -> None:
        key = (route, status)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.metrics.counter(self.metrics.http_requests, route, status)
        counter.inc()
        histogram = self._latency.get(route)
        if histogram is None:
            histogram = self._latency[route] = self.metrics.histogram(self.metrics.http_latency, route)
        histogram.observe(seconds)

    def _allowed(self, environ) -> bool:
        try:
            address = ipaddress.ip_address(environ.get("REMOTE_ADDR", ""))
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.allow)

    def _metrics(self, environ, start_response):
        if not self._allowed(environ):
            body = json_bytes({"error": NotFound().to_dict()})
            start_response("404 NOT FOUND", [("Content-Type", "application/json; charset=utf-8"), *SECURITY_HEADERS,
                                             ("Content-Length", str(len(body)))])
            return [body]
        if self.before_render is not None:
            self.before_render()
        body = self.metrics.render()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Cache-Control", "no-store"),
                                  *SECURITY_HEADERS, ("Content-Length", str(len(body)))])
        return [body] if environ.get("REQUEST_METHOD") == "GET" else []
