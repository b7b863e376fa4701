"""The updater's publish endpoint: each verified live database, for the replicas' pullers.

    GET|HEAD /v1/databases           {"databases": [{"name", "sha256", "md5", "size", "build_epoch",
                                     "transfers", "not_modified", ...}]} (answers since start)
    GET|HEAD /v1/databases/<name>    the file; ETag "<sha256>", Last-Modified; 304 on If-None-Match
                                     (or, without it, If-Modified-Since); 404 NOT_PUBLISHED while
                                     the updater has no file of it (yet), 503 NOT_VERIFIED while its
                                     file is not one update-db vouches for
    GET      /healthz                200 while the endpoint serves

Only a file the updater vouches for is served: its state file must hold an md5 recorded for that
very inode, size and mtime (UpdateState.live_signature), which update-db writes only after the
file passed verification. A file copied over the live one by hand, or damaged in place, has another
signature and is not published until the next successful update-db learns it. The body is sent
from the descriptor the checks were made on, so a rename during a transfer never mixes versions.

A stdlib threading server: a handful of conditional GETs per replica per minute, one full
transfer per replica per new database. It listens only on the network the replicas share with the
updater (compose: `web`; no published port).
"""
from __future__ import annotations

import collections
import email.utils
import hashlib
import json
import logging
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..updater.state import UpdateState
from .catalog import FleetDatabase

log = logging.getLogger("app.fleet.publish")
DATABASE_PATH = re.compile(r"^/v1/databases/([a-z0-9-]{1,32})$")


class Published:
    """One open, vouched-for version of a database."""

    def __init__(self, database: FleetDatabase, fd: int, stat: os.stat_result, state: UpdateState, sha256: str):
        self.database, self.fd, self.stat, self.state, self.sha256 = database, fd, stat, state, sha256

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'

    @property
    def last_modified(self) -> str:
        return email.utils.formatdate(self.stat.st_mtime, usegmt=True)

    def summary(self, answers: collections.Counter) -> dict:
        name = self.database.name
        return {"name": name, "sha256": self.sha256, "md5": self.state.md5, "size": self.stat.st_size,
                "build_epoch": self.state.build_epoch, "last_modified": self.last_modified,
                "source": self.state.source, "transfers": answers[name, "transfers"],
                "not_modified": answers[name, "not_modified"]}

    def close(self) -> None:
        os.close(self.fd)


class Catalog:
    """The updater's databases, each opened and hashed once per version (sha256 cached per signature)."""

    def __init__(self, databases: tuple[FleetDatabase, ...]):
        self.databases = {database.name: database for database in databases}
        self._digests: dict[tuple[str, tuple], str] = {}
        self._lock = threading.Lock()
        self.answers: collections.Counter = collections.Counter()  # (name, "transfers" | "not_modified") -> count

    def count(self, name: str, answer: str) -> None:
        with self._lock:
            self.answers[name, answer] += 1

    def open(self, name: str) -> Published | None:
        """The current verified version of `name`, or None; the caller closes it."""
        database = self.databases[name]
        try:
            fd = os.open(database.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            stat = os.fstat(fd)
            signature = [stat.st_ino, stat.st_size, stat.st_mtime_ns]
            state = UpdateState.load(database.path)
            if not state.md5 or state.live_signature != signature:
                os.close(fd)
                return None
            return Published(database, fd, stat, state, self._sha256(name, fd, tuple(signature)))
        except BaseException:
            _close_quietly(fd)
            raise

    def _sha256(self, name: str, fd: int, signature: tuple) -> str:
        key = (name, signature)
        with self._lock:  # one hash per version, even when every replica asks at once
            if key not in self._digests:
                self._digests = {k: v for k, v in self._digests.items() if k[0] != name}
                with os.fdopen(os.dup(fd), "rb") as handle:
                    self._digests[key] = hashlib.file_digest(handle, "sha256").hexdigest()
            return self._digests[key]


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison, `*` matches any current representation."""
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def not_modified_since(if_modified_since: str, mtime: float) -> bool:
    try:
        since = email.utils.parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return int(mtime) <= since


class PublishHandler(BaseHTTPRequestHandler):
    server_version = "easy-geoip-publish/1.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    catalog: Catalog  # set on the subclass made by PublishServer

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            return self._json(200, {"status": "ok"}, send_body)
        if path == "/v1/databases":
            return self._index(send_body)
        match = DATABASE_PATH.match(path)
        if not match or match.group(1) not in self.catalog.databases:
            return self._error(404, "UNKNOWN_DATABASE", "no such database is published here", send_body)
        name = match.group(1)
        published = self.catalog.open(name)
        if published is None:
            if not os.path.exists(self.catalog.databases[name].path):
                return self._error(404, "NOT_PUBLISHED", "the updater has no file of this database (yet)", send_body)
            return self._error(503, "NOT_VERIFIED", "the updater's file of this database is not one it verified",
                               send_body)
        try:
            self._file(published, send_body)
        finally:
            published.close()

    def _index(self, send_body: bool) -> None:
        summaries = []
        for name in self.catalog.databases:
            published = self.catalog.open(name)
            if published is not None:
                summaries.append(published.summary(self.catalog.answers))
                published.close()
        self._json(200, {"databases": summaries}, send_body)

    def _file(self, published: Published, send_body: bool) -> None:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            unchanged = matches(if_none_match, published.etag)
        else:
            since = self.headers.get("If-Modified-Since")
            unchanged = since is not None and not_modified_since(since, published.stat.st_mtime)
        headers = {"ETag": published.etag, "Last-Modified": published.last_modified, "Cache-Control": "no-cache",
                   "X-Database-Build-Epoch": str(published.state.build_epoch or "")}
        if unchanged:
            self._start(304, headers)
            self.catalog.count(published.database.name, "not_modified")
            return
        self._start(200, {**headers, "Content-Type": "application/octet-stream",
                          "Content-Length": str(published.stat.st_size)})
        if send_body:
            with os.fdopen(os.dup(published.fd), "rb") as handle:
                self.connection.sendfile(handle, 0, published.stat.st_size)
            self.catalog.count(published.database.name, "transfers")

    def _start(self, status: int, headers: dict) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _json(self, status: int, body: dict, send_body: bool) -> None:
        data = json.dumps(body, sort_keys=True).encode()
        self._start(status, {"Content-Type": "application/json", "Content-Length": str(len(data)),
                             "Cache-Control": "no-cache"})
        if send_body:
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, send_body: bool) -> None:
        self._json(status, {"error": {"code": code, "message": message}}, send_body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        log.debug("%s %s", self.address_string(), format % args)


class PublishServer:
    """`with PublishServer(databases, ("0.0.0.0", 8081)):` serves in a daemon thread until exit."""

    def __init__(self, databases: tuple[FleetDatabase, ...], address: tuple[str, int]):
        handler = type("Handler", (PublishHandler,), {"catalog": Catalog(databases)})
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        server_class = type("Server", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
        self.server = server_class(address, handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="publish", daemon=True)

    def start(self) -> "PublishServer":
        self._thread.start()
        log.info("publishing %s on %s:%d", ", ".join(self.server.RequestHandlerClass.catalog.databases),
                 *self.server.server_address[:2])
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()

    def __enter__(self) -> "PublishServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
