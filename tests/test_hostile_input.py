"""Hostile input through the real front door: Nginx -> uWSGI -> app (the docker/ configs, natively).

Requests are written byte by byte on a raw socket, so nothing (no client library) cleans them up
first: invalid UTF-8, broken percent-encoding, CR/LF, NUL and other control characters, markup,
oversized and deeply nested bodies, huge batches, very long URIs, and names that resolve to
internal addresses. For each input class the rule is the same:

- a clear 4xx with a stable JSON error code (or the page's own error, for GET /?q=);
- never a 5xx, never a stack trace, never the raw input echoed (the page may show the query in
  its form, HTML-escaped and cut to 300 characters);
- no header or log line can be injected: Nginx's JSON access log stays one valid object a line;
- internal addresses behind a name are never revealed.

Rate limiting, XFF spoofing, security headers and the supervisord socket are checked by
tests/test_native_stack.py against the same stack; this module only switches the rate limit off
so that its own requests are not limited.
"""
from __future__ import annotations

import json
import re
import socket

import pytest

from tests.support.city_fixtures import write_city_db
from tests.support.dns_server import STANDARD_ZONE, LocalDnsServer
from tests.support.native_stack import NativeStack

pytestmark = pytest.mark.slow

HOSTILE_ZONE = {
    **STANDARD_ZONE,
    "intranet.test.example": [("A", "192.168.10.20", 60), ("A", "172.20.0.5", 60), ("AAAA", "fd12:3456::7", 60)],
    "loopback.test.example": [("A", "127.0.0.1", 60), ("AAAA", "::1", 60)],
    "metadata.test.example": [("A", "169.254.169.254", 60)],
    "half.test.example": [("A", "10.20.30.40", 60), ("A", "81.2.69.200", 60)],
}
INTERNAL_ADDRESSES = ["192.168.10.20", "172.20.0.5", "fd12:3456::7", "127.0.0.1", "::1", "169.254.169.254",
                      "10.20.30.40", "10.1.2.3", "fd00::1", "10.9.9.9"]


@pytest.fixture(scope="module")
def dns():
    with LocalDnsServer(HOSTILE_ZONE) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory, dns):
    city = write_city_db(tmp_path_factory.mktemp("hostile") / "city.mmdb")
    with NativeStack(city, workers=2, threads=8, env={"GEOIP_RATE_LIMIT": "0", "DNS_NAMESERVERS": dns.nameserver,
                                                      "DNS_TIMEOUT": "1"}) as running:
        yield running


class RawResponse:
    def __init__(self, raw: bytes):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.status_line = lines[0].decode("latin-1")
        self.status = int(self.status_line.split()[1])
        self.headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            self.headers.append((name.strip().lower(), value.strip()))

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name.lower()), None)

    def json(self):
        assert (self.header("content-type") or "").startswith("application/json"), self.headers
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def raw_request(stack, request_line: bytes, headers: list[bytes] = (), body: bytes = b"") -> RawResponse:
    """One request exactly as given (no encoding, no validation), `Connection: close`, whole answer."""
    lines = [request_line, b"Host: 127.0.0.1", b"Connection: close", *headers]
    if body:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    payload = b"\r\n".join(lines) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", stack.port), timeout=30) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    response = b"".join(chunks)
    if b"transfer-encoding: chunked" in response.partition(b"\r\n\r\n")[0].lower():
        head, _, rest = response.partition(b"\r\n\r\n")
        response = head + b"\r\n\r\n" + _dechunk(rest)
    return RawResponse(response)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out


def get(stack, target: bytes, headers=()) -> RawResponse:
    return raw_request(stack, b"GET " + target + b" HTTP/1.1", list(headers))


def post_json(stack, body: bytes, path: bytes = b"/api/v1/lookup") -> RawResponse:
    return raw_request(stack, b"POST " + path + b" HTTP/1.1", [b"Content-Type: application/json"], body)


def assert_clean_error(response: RawResponse, status: int | tuple, code: str | tuple | None = None,
                       not_echoed: tuple[bytes, ...] = ()) -> None:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status in statuses, (response.status_line, response.body[:300])
    error = response.json()["error"]
    if code is not None:
        codes = code if isinstance(code, tuple) else (code,)
        assert error["code"] in codes, error
    assert set(error) == {"code", "message"}
    for fragment in not_echoed:
        assert fragment not in response.body, f"{fragment!r} echoed"
    assert b"Traceback" not in response.body


# -- paths: encoding, control characters, markup ---------------------------------------------------

BAD_TARGETS = {
    "invalid utf-8 (percent-encoded)": b"%FF%FE%FD.example",
    "overlong utf-8 for '/'": b"%C0%AF%C0%AF.example",
    "lone surrogate": b"%ED%A0%80.example",
    "invalid utf-8 (raw bytes)": b"\xff\xfe.example",
    "broken percent-encoding": b"%zz%4.example",
    "percent at the end": b"example.com%",
    "NUL": b"example%00.com",
    "CR LF": b"example.com%0D%0ASet-Cookie:%20pwned=1",
    "escape sequence": b"%1B%5B31mred.example",
    "bell and backspace": b"a%07%08b.example",
    "markup": b"%3Cscript%3Ealert(1)%3C/script%3E.example",
    "markup (raw)": b"<img/src=x/onerror=alert(1)>.example",
    "quotes": b"%22%27%3E%3Cb%3E.example",
    "path traversal": b"..%2F..%2Fetc%2Fpasswd",
    "ip with zone": b"fe80::1%25eth0",
    "ip with prefix": b"81.2.69.160%2F24",
    "leading zeros": b"081.002.069.160",
    "very long label": b"a" * 64 + b".example",
    "2 KB name": b"a." * 1000 + b"example",
}


@pytest.mark.parametrize("raw", list(BAD_TARGETS.values()), ids=list(BAD_TARGETS))
@pytest.mark.parametrize("route", [b"/api/v1/lookup/", b"/", b"/geoip/v2.1/city/"])
def test_bad_targets_get_a_clean_400(stack, route, raw):
    if route == b"/" and raw.startswith(b".."):
        pytest.skip("/../ is resolved by Nginx itself (checked in test_path_traversal_stays_inside)")
    response = get(stack, route + raw, [b"Accept: application/json"])
    if route == b"/geoip/v2.1/city/" and "maxmind" in (response.header("content-type") or ""):
        body = json.loads(response.body)  # MaxMind's error shape: {"code", "error"}
        assert response.status == 400 and body["code"] == "IP_ADDRESS_INVALID", body
    elif raw.startswith(b"..") or (route == b"/" and b"/" in raw.replace(b"%2F", b"/").replace(b"%2f", b"/")
                                   or b"%2F" in raw):
        # Nginx resolves dot segments, and a decoded "/" leaves the one-segment legacy route.
        assert_clean_error(response, (400, 404), ("INVALID_TARGET", "BAD_REQUEST", "NOT_FOUND"))
    else:
        assert_clean_error(response, 400, ("INVALID_TARGET", "BAD_REQUEST"))
    decoded = raw.replace(b"%3C", b"<").replace(b"%3E", b">")
    for fragment in (b"<script", b"<img", b"<b>", b"Set-Cookie", b"\x1b[", b"passwd"):
        if fragment in decoded or fragment in raw:
            assert fragment not in response.body
    assert response.header("set-cookie") is None


def test_nul_and_raw_control_bytes_in_the_request_line_are_refused(stack):
    for target in (b"/api/v1/lookup/a\x00b.example", b"/api/v1/lookup/a\x1bb.example", b"/api/v1/lookup/a\tb.example"):
        response = get(stack, target)
        assert 400 <= response.status < 500, (target, response.status_line)
        assert b"\x00" not in response.body and b"\x1b" not in response.body


def test_very_long_uri_is_414_json(stack):
    response = get(stack, b"/api/v1/lookup/" + b"a" * 20_000 + b".example")
    assert_clean_error(response, 414, "URI_TOO_LONG", not_echoed=(b"a" * 100,))


def test_path_traversal_stays_inside(stack):
    for target in (b"/static/../../../../etc/passwd", b"/static/..%2F..%2F..%2Fetc%2Fpasswd",
                   b"/static/%2e%2e/%2e%2e/docker/uwsgi.ini", b"/../../etc/passwd"):
        response = get(stack, target)
        assert 400 <= response.status < 500, (target, response.status_line)
        assert b"root:" not in response.body and b"[uwsgi]" not in response.body


# -- the page: the query comes back only escaped --------------------------------------------------

@pytest.mark.parametrize("query", [
    b"%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    b"%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
    b"%27%3E%3Csvg%2Fonload%3Dalert(1)%3E",
    b"javascript:alert(1)",
    b"%0D%0ASet-Cookie:%20pwned=1",
    b"%FF%FE%3Cscript%3E",
    b"%00%1B%5B31m",
    b"{{7*7}}%24{7*7}",
])
def test_page_shows_hostile_queries_only_escaped(stack, query):
    response = get(stack, b"/?q=" + query, [b"Accept: text/html"])
    assert response.status in (400, 404, 422), response.status_line
    assert (response.header("content-type") or "").startswith("text/html")
    body = response.text
    for raw in ("<script>alert", "<img src=x", "<svg/onload"):
        assert raw not in body
    # The form shows the query back exactly (HTML-escaped) as its value; nowhere else.
    outside_the_form = re.sub(r'<input[^>]*id="q"[^>]*>', "", body)
    assert "\x1b" not in outside_the_form and "\x00" not in outside_the_form
    assert response.header("set-cookie") is None
    assert "49" not in re.sub(r"<[^>]*>", "", body).split("{{7*7}}")[0][-5:]  # no template evaluation
    assert "Traceback" not in body
    csp = response.header("content-security-policy") or ""
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_legacy_redirect_cannot_be_turned_into_header_injection(stack):
    response = get(stack, b"/evil.example%0D%0ASet-Cookie:%20pwned=1", [b"Accept: text/html"])
    assert response.header("set-cookie") is None
    location = response.header("location")
    if location is not None:
        assert "\r" not in location and "\n" not in location and location.startswith("/")


def test_host_header_does_not_steer_redirects(stack):
    response = raw_request(stack, b"GET /81.2.69.160 HTTP/1.1", [b"Accept: text/html"])
    location = response.header("location") or ""
    assert response.status == 302 and not location.startswith("http"), location
    response = raw_request(stack, b"GET /81.2.69.160 HTTP/1.1", [b"Accept: text/html", b"X-Forwarded-Host: evil.example"])
    assert "evil.example" not in (response.header("location") or "")


# -- bodies ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b"[" * 100_000,
    b'{"targets": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"targets": ["81.2.69.160"' + b"," * 10 + b"]}",
    b'{"targets": ["\xff\xfe"]}',
    b'{"targets": ["\\ud800"]}',
    b'{"targets": "81.2.69.160"}',
    b'{"targets": ["81.2.69.160"], "lang": {"$ne": 1}}',
    b"\xef\xbb\xbf\xff",
    b"null",
    b"",
    b'{"targets": [1e999999]}',
    b"<xml/>",
])
def test_malformed_bodies_get_a_clean_400(stack, body):
    response = post_json(stack, body)
    if body == b'{"targets": [1e999999]}':  # valid JSON (infinity): answered item by item
        assert response.status == 200 and response.json()["results"][0]["error"]["code"] == "INVALID_TARGET"
        return
    if body in (b'{"targets": ["\\ud800"]}',):  # a lone surrogate is valid JSON text: that item is invalid
        assert response.status == 200 and response.json()["results"][0]["error"]["code"] == "INVALID_TARGET"
        return
    assert_clean_error(response, 400, "BAD_REQUEST", not_echoed=(b"$ne", b"<xml"))


def test_body_larger_than_the_app_accepts_is_413_from_the_app(stack):
    # Nginx lets 1 MiB through; the app's own limit (512 KiB) answers first.
    body = b'{"targets": ["' + b"a" * (600 * 1024) + b'"]}'
    assert_clean_error(post_json(stack, body), 413, "PAYLOAD_TOO_LARGE", not_echoed=(b"a" * 100,))


def test_body_larger_than_nginx_accepts_is_413(stack):
    body = b'{"targets": ["' + b"a" * (2 * 1024 * 1024) + b'"]}'
    assert_clean_error(post_json(stack, body), 413, "PAYLOAD_TOO_LARGE")


def test_batch_past_the_cap_is_413(stack):
    body = json.dumps({"targets": ["81.2.69.160"] * 1001}).encode()
    assert_clean_error(post_json(stack, body), 413, "BATCH_TOO_LARGE")
    body = json.dumps({"targets": ["81.2.69.160"] * 1000}).encode()
    response = post_json(stack, body)
    assert response.status == 200 and len(response.json()["results"]) == 1000


def test_batch_items_with_markup_and_control_characters_are_not_echoed(stack):
    targets = ["<script>alert(1)</script>.example", "a\r\nSet-Cookie: x=1", "\x00\x1b[31m", "x" * 2000, 42, None,
               {"$gt": ""}]
    response = post_json(stack, json.dumps({"targets": targets}).encode())
    assert response.status == 200
    results = response.json()["results"]
    assert [item["error"]["code"] for item in results] == ["INVALID_TARGET"] * len(targets)
    # An item's query comes back only as a JSON string (that is how a client matches answers to
    # items), never with control characters, never longer than a target may be, and in a response
    # no browser will render: JSON, nosniff, CSP default-src 'none'.
    assert [item["query"] for item in results] == ["<script>alert(1)</script>.example", None, None, None, None, None, None]
    assert b"\r" not in response.body and b"\x1b" not in response.body and b"x" * 1100 not in response.body
    assert response.header("content-type").startswith("application/json")
    assert response.header("x-content-type-options") == "nosniff"
    assert "default-src 'none'" in response.header("content-security-policy")
    assert response.header("set-cookie") is None


def test_wrong_content_type_and_methods(stack):
    response = raw_request(stack, b"POST /api/v1/lookup HTTP/1.1", [b"Content-Type: text/plain"], b"81.2.69.160")
    assert_clean_error(response, 400, "BAD_REQUEST")
    for method in (b"PUT", b"DELETE", b"PATCH", b"TRACE"):
        response = raw_request(stack, method + b" /api/v1/lookup/81.2.69.160 HTTP/1.1", [b"X-Secret: sentinel-42"])
        assert 400 <= response.status < 500 and b"sentinel-42" not in response.body, (method, response.status_line)
        if response.status == 405 and method != b"TRACE":  # Nginx refuses TRACE itself, without Allow
            assert "GET" in (response.header("allow") or ""), response.headers


def test_no_cors_by_default_and_no_jsonp(stack):
    response = get(stack, b"/api/v1/lookup/81.2.69.160?callback=steal", [b"Origin: https://evil.example"])
    assert response.status == 200 and response.header("access-control-allow-origin") is None
    assert response.body.startswith(b"{") and b"steal" not in response.body
    assert response.header("content-type").startswith("application/json")
    preflight = raw_request(stack, b"OPTIONS /api/v1/lookup HTTP/1.1",
                            [b"Origin: https://evil.example", b"Access-Control-Request-Method: POST"])
    assert preflight.header("access-control-allow-origin") is None
    assert preflight.header("access-control-allow-methods") is None


# -- internal addresses --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["intranet.test.example", "loopback.test.example", "metadata.test.example",
                                  "internal.test.example"])
def test_names_of_internal_hosts_reveal_nothing(stack, name):
    for path in (b"/api/v1/lookup/" + name.encode(), b"/" + name.encode()):
        response = get(stack, path, [b"Accept: application/json"])
        assert_clean_error(response, 422, "IP_ADDRESS_RESERVED")
        for address in INTERNAL_ADDRESSES:
            assert address.encode() not in response.body
    page = get(stack, b"/?q=" + name.encode(), [b"Accept: text/html"])
    assert page.status == 422
    # The page's help text names example ranges ("127.0.0.1 or fd00::/8"); compare with the page
    # for a name that resolves nowhere near those addresses.
    baseline = get(stack, b"/?q=10.0.0.1", [b"Accept: text/html"]).text
    for address in INTERNAL_ADDRESSES:
        assert page.text.count(address) == baseline.count(address), address
    batch = post_json(stack, json.dumps({"targets": [name]}).encode())
    assert batch.status == 200 and batch.json()["results"][0]["error"]["code"] == "IP_ADDRESS_RESERVED"
    assert not any(address.encode() in batch.body for address in INTERNAL_ADDRESSES)


def test_mixed_name_shows_only_its_public_address(stack):
    response = get(stack, b"/api/v1/lookup/half.test.example")
    document = response.json()
    assert response.status == 200 and document["addresses_withheld"] == 1
    assert [result["ip"] for result in document["results"]] == ["81.2.69.200"]
    assert b"10.20.30.40" not in response.body
    assert "10.20.30.40" not in get(stack, b"/?q=half.test.example", [b"Accept: text/html"]).text


def test_reserved_address_literals_are_refused_without_lookup(stack):
    for address in (b"169.254.169.254", b"127.0.0.1", b"::ffff:10.0.0.1", b"64:ff9b::a00:1", b"2002:a00:1::1",
                    b"0.0.0.0", b"255.255.255.255", b"100.64.0.1"):
        response = get(stack, b"/api/v1/lookup/" + address)
        assert_clean_error(response, 422, "IP_ADDRESS_RESERVED")


# -- logs -------------------------------------------------------------------------------------------

def test_log_lines_cannot_be_forged(stack):
    forged = b'{"time":"2000-01-01T00:00:00+00:00","client":"6.6.6.6","status":200,"forged":true}'
    get(stack, b"/api/v1/lookup/x.example%0D%0A" + forged.replace(b'"', b"%22").replace(b" ", b"%20"),
        [b"User-Agent: agent\x0b" + b"x"])
    raw_request(stack, b"GET /api/v1/lookup/81.2.69.160 HTTP/1.1", [b'User-Agent: a"\\' + b"\t" + forged])
    get(stack, b"/?q=%0A" + forged.replace(b'"', b"%22"), [b"Referer: \x1b[2J"])
    import time
    time.sleep(0.5)  # Nginx writes its access log line after the response
    access_lines = [line for line in stack.log().splitlines() if line.startswith('{"time"')]
    assert access_lines
    for line in access_lines:
        entry = json.loads(line)  # every line is one whole, valid JSON object
        assert "forged" not in entry and entry.get("client") != "6.6.6.6"
    assert not any("\x1b" in line for line in stack.log().splitlines())
