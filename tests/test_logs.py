"""Logs: one JSON line per request from Nginx, JSON lines from the app, and the request id that
ties them together (X-Request-ID from a trusted proxy, else Nginx's own; passed to uWSGI and
returned). Through the native stack (docker/ configs), plus the app's formatter on its own.
"""
from __future__ import annotations

import io
import json
import logging
import re
import time
from pathlib import Path

import pytest
from werkzeug.test import Client

from app import logs
from app.config import Config, ConfigError
from tests.support.native_stack import NativeStack, http_request

SHARED_CITY = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "maxmind" / "GeoIP2-City-Test.mmdb"


def request(stack, path: str, headers: dict | None = None, source: str = "127.0.0.1"):
    status, header_list, body = http_request(stack.port, path, headers=headers, source=source)
    return status, {k.lower(): v for k, v in header_list}, body


def access_lines(stack) -> list[dict]:
    lines = []
    for line in stack.log().splitlines():
        if line.startswith('{"time"') and '"uri"' in line:
            lines.append(json.loads(line))
    return lines


def wait_for_access_line(stack, request_id: str, timeout: float = 15) -> dict:
    """Nginx writes its buffer at least every second (flush=1s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in access_lines(stack):
            if line["request_id"] == request_id:
                return line
        time.sleep(0.2)
    raise AssertionError(f"no access line with request id {request_id}:\n{stack.log()[-2000:]}")


# -- the app's side -----------------------------------------------------------------------------

def test_app_log_lines_are_json_with_the_request_id():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    def app(environ, start_response):
        logger.warning('odd "input"\nsecond line')
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    try:
        Client(logs.RequestId(app)).get("/", headers={"X-Request-ID": "abc-123"})
        logger.info("outside a request")
    finally:
        logger.removeHandler(handler)
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["level"] == "warning" and first["logger"] == "tests.logs"
    assert first["message"] == 'odd "input"\nsecond line' and first["request_id"] == "abc-123"
    assert second["request_id"] is None and re.match(r"\d{4}-\d\d-\d\dT", second["time"])


def test_log_level_setting():
    assert Config.from_env({}).log_level == "INFO"
    assert Config.from_env({"LOG_LEVEL": "warning"}).log_level == "WARNING"
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        Config.from_env({"LOG_LEVEL": "loud"})


# -- through Nginx --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack():
    if not SHARED_CITY.is_file():
        pytest.skip("../shared/testdata/maxmind is absent")
    with NativeStack(SHARED_CITY, env={"GEOIP_RATE_LIMIT": "0", "TRUSTED_PROXIES": "127.0.0.1/32",
                                       "GEOIP_WORKER_MEMORY_LIMIT_MB": "1"}) as running:
        yield running


@pytest.mark.slow
def test_each_request_gets_an_id_returned_and_logged(stack):
    status, headers, _ = request(stack, "/api/v1/lookup/81.2.69.142")
    assert status == 200
    request_id = headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # Nginx's $request_id
    line = wait_for_access_line(stack, request_id)
    assert line["uri"] == "/api/v1/lookup/81.2.69.142" and line["status"] == 200 and line["method"] == "GET"
    # Errors Nginx answers itself carry one too.
    status, headers, _ = request(stack, "/api/v1/lookup/" + "a" * 9000)
    assert status == 414 and re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])


@pytest.mark.slow
def test_a_trusted_proxys_request_id_is_kept_and_an_untrusted_one_is_not(stack):
    status, headers, _ = request(stack, "/healthz", {"X-Request-ID": "edge-7f3a.42"})
    assert status == 200 and headers["x-request-id"] == "edge-7f3a.42"
    wait_for_access_line(stack, "edge-7f3a.42")
    _, headers, _ = request(stack, "/healthz", {"X-Request-ID": "spoofed-by-client"}, source="127.0.0.2")
    assert headers["x-request-id"] != "spoofed-by-client"
    # Not a plain token: replaced, never echoed.
    _, headers, _ = request(stack, "/healthz", {"X-Request-ID": 'x" ,"status":500'})
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])


@pytest.mark.slow
def test_the_app_logs_json_lines(stack):
    """The memory guard (limit 1 MB here) logs a warning from inside a worker."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [json.loads(line) for line in stack.log().splitlines()
                 if line.startswith("{") and '"logger": "app.worker_memory"' in line]
        if found:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"no JSON line from app.worker_memory:\n{stack.log()[-2000:]}")
    assert found[0]["level"] == "warning" and "replacing it" in found[0]["message"]


@pytest.mark.slow
def test_access_log_off(tmp_path):
    if not SHARED_CITY.is_file():
        pytest.skip("../shared/testdata/maxmind is absent")
    with NativeStack(SHARED_CITY, workers=1, env={"GEOIP_ACCESS_LOG": "off"}) as quiet:
        for _ in range(5):
            assert request(quiet, "/api/v1/lookup/81.2.69.142")[0] == 200
        time.sleep(1.5)
        assert access_lines(quiet) == []
