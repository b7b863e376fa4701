"""HTTP for the sources: one requests session, status codes mapped to update errors.

Downloads are streamed to a file as sent (no transparent decompression: a `.gz` stays a `.gz`),
with the body length checked against Content-Length so a cut connection is never taken for a
complete file.
"""
from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass

import requests
import urllib3

from .errors import AuthRejected, NotFoundAtSource, QuotaReached, SourceError, TransientError, Unreachable
from .progress import Progress

USER_AGENT = "easy-geoip-updater/1.0"
CHUNK = 1 << 20

# Everything that means "the network or the server let us down this time".
# Before any answer: name resolution, connect (refused, reset, timed out), TLS handshake. requests
# raises ConnectionError for all of them (SSLError and ConnectTimeout are ConnectionErrors too).
_UNREACHABLE = (requests.ConnectionError,)
_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
              urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)


def describe_url(url: str) -> str:
    """The URL without credentials or query string, fit for logs and messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class Validators:
    """What a server said identifies a file, for a conditional GET next time."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True)
class Downloaded:
    bytes: int
    validators: Validators
    not_modified: bool = False


class HttpClient:
    def __init__(self, timeout: float = 30.0, max_bytes: int | None = None):
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # trust_env stays on: HTTPS_PROXY/NO_PROXY and REQUESTS_CA_BUNDLE (the image sets it) apply.

    def close(self) -> None:
        self.session.close()

    def get_json(self, url: str, auth=None) -> object:
        response = self._get(url, auth=auth)
        with response:
            _raise_for_status(response, url)
            try:
                return response.json()
            except ValueError:
                raise SourceError(f"{describe_url(url)} did not answer with JSON") from None

    def download(self, url: str, dest: str, auth=None, progress: Progress | None = None,
                 validators: Validators | None = None, label: str | None = None) -> Downloaded:
        """Stream url into the (new) file dest. A 304 answer leaves dest empty and says so."""
        headers = validators.headers() if validators else {}
        response = self._get(url, auth=auth, headers=headers)
        with response:
            if response.status_code == 304 and headers:
                return Downloaded(0, validators, not_modified=True)
            _raise_for_status(response, url)
            total = _content_length(response)
            if self.max_bytes and total and total > self.max_bytes:
                raise SourceError(f"{describe_url(url)} is {total} bytes, more than the {self.max_bytes} allowed")
            received = 0
            if progress:
                progress.start(label or describe_url(response.url), total)
            try:
                with open(dest, "wb") as out:
                    for chunk in response.raw.stream(CHUNK, decode_content=False):
                        out.write(chunk)
                        received += len(chunk)
                        if progress:
                            progress.advance(len(chunk))
                        if self.max_bytes and received > self.max_bytes:
                            raise SourceError(f"{describe_url(url)} sent more than the {self.max_bytes} bytes allowed")
            except _TRANSIENT as exc:
                raise TransientError(f"download from {describe_url(url)} was cut after {received} bytes ({_reason(exc)})") from None
            finally:
                if progress:
                    progress.finish()
            if total is not None and received != total:
                raise TransientError(f"download from {describe_url(url)} was cut: {received} of {total} bytes")
            return Downloaded(received, Validators(response.headers.get("ETag"), response.headers.get("Last-Modified")))

    def _get(self, url: str, auth=None, headers=None) -> requests.Response:
        try:
            return self.session.get(url, auth=auth, headers=headers, stream=True, timeout=self.timeout,
                                    allow_redirects=True)
        except requests.exceptions.InvalidURL:
            raise SourceError(f"{describe_url(url)} is not a valid URL") from None
        except requests.exceptions.TooManyRedirects:
            raise SourceError(f"{describe_url(url)} redirects in a loop") from None
        except _UNREACHABLE as exc:
            if isinstance(exc, requests.ReadTimeout):  # connected, then no answer in time: reachable
                raise TransientError(f"no answer from {describe_url(url)} ({_reason(exc)})") from None
            raise Unreachable(f"cannot reach {describe_url(url)} ({_reason(exc)})") from None
        except _TRANSIENT as exc:
            raise TransientError(f"cannot reach {describe_url(url)} ({_reason(exc)})") from None
        except requests.RequestException as exc:
            raise SourceError(f"request to {describe_url(url)} failed ({type(exc).__name__})") from None


def _raise_for_status(response: requests.Response, url: str) -> None:
    status = response.status_code
    if status == 200:
        return
    where = describe_url(url)
    detail = _server_message(response)
    if status in (401, 403):
        raise AuthRejected(f"{where} refused the credentials (HTTP {status}{detail}): check the account ID and licence key")
    if status == 429:
        raise QuotaReached(f"{where} says the download quota is reached (HTTP 429{detail}); not retrying, try again tomorrow")
    if status == 408 or status >= 500:
        raise TransientError(f"{where} answered HTTP {status}{detail}")
    if status == 404:
        raise NotFoundAtSource(f"{where} was not found (HTTP 404{detail})")
    raise SourceError(f"{where} answered HTTP {status}{detail}")


def _server_message(response: requests.Response) -> str:
    """MaxMind explains refusals in a small JSON body ({"code", "error"}); keep a short, printable bit."""
    try:
        body = response.raw.read(512, decode_content=True) or b""
        text = body.decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            text = parsed.get("error") or parsed.get("message") or ""
    except Exception:  # the body is a courtesy; the status code is what matters
        return ""
    text = "".join(ch for ch in str(text) if ch.isprintable())[:160].strip()
    return f": {text}" if text else ""


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _reason(exc: Exception) -> str:
    return type(exc).__name__
