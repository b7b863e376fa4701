"""The Flask application factory: the HTTP service on top of the lookup service."""
from __future__ import annotations

import logging

from flask import Flask, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from .config import Config
from .errors import BadRequest, GeoIPError, MethodNotAllowed, NotFound, PayloadTooLarge
from .http.arrival import ArrivalStamp
from .http import caching
from .http.fastpath import LookupFastPath
from .logs import RequestId
from .http.headers import SECURITY_HEADERS, cors_headers

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024  # a full batch of 1000 long names fits; larger bodies get 413

_HTTP_ERRORS = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}


def create_app(config: Config | None = None, services=None) -> Flask:
    from .services import Services

    config = config or Config.from_env()
    app = Flask(__package__)  # the package: its templates, static files and logger name
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    app.extensions["geoip"] = services = services or Services(config)
    app.url_map.converters["target"] = TargetConverter
    wrap_metrics = None
    if services.config.metrics_enabled:
        from .metrics import install
        wrap_metrics = app.extensions["geoip_metrics"] = install(services)  # before anything takes services.lookup

    from .http.api import api
    from .http.geoip_compat import geoip_compat
    from .http.page import page
    app.register_blueprint(page)
    app.register_blueprint(geoip_compat)
    app.register_blueprint(api)

    app.register_error_handler(Exception, _handle_error)
    app.after_request(_security_headers)
    # The fast path answers IP lookups only; everything it passes on is stamped on arrival.
    app.wsgi_app = LookupFastPath(ArrivalStamp(app.wsgi_app, services.resolver.clock), services)
    if wrap_metrics is not None:
        app.wsgi_app = wrap_metrics(app.wsgi_app)
    app.wsgi_app = RequestId(app.wsgi_app)
    return app


class TargetConverter(PathConverter):
    """Anything after the prefix, slashes and control characters included, so that every odd
    input reaches the target parser and gets INVALID_TARGET rather than a routing 404."""
    regex = r"[\s\S]+"
    part_isolating = False


def _handle_error(error: Exception):
    """The one place where failures become responses: a stable code, a fixed message, no trace."""
    from .http.geoip_compat import maxmind_error_response
    from .http.responses import error_payload, json_response

    allow = None
    if isinstance(error, HTTPException):
        if error.code is not None and error.code < 400:
            return error
        allow = getattr(error, "valid_methods", None)  # RFC 9110: a 405 names the allowed methods
        error = _HTTP_ERRORS.get(error.code, BadRequest)()
    elif not isinstance(error, GeoIPError):
        log.exception("unhandled error on %s %s", request.method, request.path)
        error = GeoIPError()
    response = (maxmind_error_response(error) if request.blueprint == "geoip_compat"
                else json_response(error_payload(error), error.status))
    if allow:
        response.headers["Allow"] = ", ".join(allow)
    for name, value in caching.error_headers(error.code, error.status, current_app.extensions["geoip"].config.cache_max_age):
        response.headers[name] = value
    return response


def _security_headers(response):
    headers = response.headers
    for name, value in SECURITY_HEADERS:
        headers.setdefault(name, value)
    config = current_app.extensions["geoip"].config
    for name, value in cors_headers(config.cors_allow_origin, request.method, request.path):
        if name == "Vary":
            headers.add(name, value)
        else:
            headers[name] = value
    return response
