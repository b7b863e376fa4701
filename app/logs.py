"""The app's logs: one JSON object per line on stderr (level, logger, message, request id).

Nginx decides each request's id (docker/site.conf: the X-Request-ID a trusted proxy sent, else its
own $request_id), passes it to uWSGI as X-Request-ID and returns it in the response; `RequestId`,
the outermost WSGI layer, keeps it for the thread while the request runs, so any line logged
meanwhile carries it. Access lines come from Nginx only (one per request); the app logs what
goes wrong, at LOG_LEVEL and above.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading

_current = threading.local()


def current_request_id() -> str | None:
    return getattr(_current, "request_id", None)


class RequestId:
    """WSGI layer: the request's X-Request-ID (as Nginx passed it) for the logs of this thread."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):  # transparent: the layers below stay reachable
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        _current.request_id = environ.get("HTTP_X_REQUEST_ID")
        try:
            return self.app(environ, start_response)
        finally:
            _current.request_id = None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str) -> None:
    """JSON lines on stderr for the whole process, at `level` (LOG_LEVEL) and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
