"""Time-zone index backed by the tz_world tables in PostGIS (see loader.py), through a psycopg2 pool.

- The pool is made on first use, so under uWSGI it is made in each worker after the fork, never in
  the master; a pool inherited across a fork is abandoned (not closed: closing would end the
  parent's sessions) and a new one is made.
- Each connection prepares the lookup once (`PREPARE`), with `plan_cache_mode = force_generic_plan`
  (PostgreSQL would otherwise re-plan it on every call on the subdivided table) and `jit = off`, and
  runs in autocommit so that no idle transaction ever holds a lock that would block a table swap.
- Connections are asynchronous (`async_=True`): a call sends its query and waits for the socket
  with a timeout, so no call waits on PostGIS longer than its bound, whatever the server does
  (stopped processes or a partition answer nothing and close nothing: the server's statement
  timeout is then never reported, and libpq's own waits have no bound or a 2 s floor). The bound
  covers the whole call, a connect and the PREPARE included: `query_bound` (zone_at, version) is
  the statement timeout plus half of it, at least 100 ms more; `status_bound` (readiness) 300 ms
  more. A connection that misses it is closed at once (no thread is left waiting on it). Waiting
  for a free connection behind other threads (`pool_wait`) comes before, on top.
- Any failure (refused, reset, statement timeout, no answer within the bound) raises
  TimezoneBackendUnavailable and makes the index "down" for `retry_after` seconds, during which
  it answers unavailable at once: a dead, slow or stalled PostGIS costs the lookups nothing. The
  first call after that window tries again, so recovery needs no restart.
"""
from __future__ import annotations

import math
import os
import select
import threading
import time

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.pool

from app.errors import TimezoneBackendUnavailable
from app.timezones.base import ZoneMatch, is_ocean_zone
from app.timezones.overlap import SQL_ORDER
from app.timezones.packaged_data import ATTRIBUTION

LOOKUP_TABLE = "tz_world_lookup"
# ST_Covers, not ST_Contains: a point on a cut line between two pieces of one zone is in neither's
# interior. The point is built from float8 parameters, never from text.
_PREPARE = (
    "PREPARE easy_geoip_zone_at(float8, float8) AS "
    f"SELECT tzid FROM {LOOKUP_TABLE} "
    "WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint($2, $1), 4326)) "
    f"ORDER BY {SQL_ORDER} LIMIT 1"
)
_EXECUTE = "EXECUTE easy_geoip_zone_at(%s, %s)"
_RELEASE_QUERY = "SELECT data_release, package_version, zones, loaded_at FROM tz_world_release LIMIT 1"
_LOADED_AT_QUERY = "SELECT loaded_at FROM tz_world_release LIMIT 1"
# How often a worker asks which tz_world load serves (`version`): a reload reaches the answers
# the lookup service keeps within this long.
VERSION_CHECK_INTERVAL = 5.0
# A call's bound past the statement timeout: half of it, at least this (a connect and the PREPARE
# fit in it; the server's own timeout, when it can report one, arrives well before).
QUERY_MARGIN_S = 0.1
# What readiness (`status`) may take more than a lookup.
STATUS_EXTRA_S = 0.3


class _Connection(psycopg2.extensions.connection):
    """An asynchronous connection and what it keeps once established: a poller on its socket and a
    cursor (made once, not per query), and whether the lookup statement is prepared on it."""

    poller = None  # set once connected
    cursor_ = None
    prepared = False


class _Stalled(Exception):
    """PostGIS did not answer within the call's bound."""


def _wait(connection: _Connection, deadline: float) -> None:
    """Drive an asynchronous connection until its connect or query is done; _Stalled at `deadline`.
    An error the server reports is raised by poll() as psycopg2 raises it for a blocking call."""
    while True:
        state = connection.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Stalled
        if state == psycopg2.extensions.POLL_READ and connection.poller is not None:
            ready = connection.poller.poll(math.ceil(remaining * 1000))
        else:
            # connecting (libpq may open another socket on the way) or a query not sent in full yet
            if state == psycopg2.extensions.POLL_READ:
                events = select.POLLIN
            elif state == psycopg2.extensions.POLL_WRITE:
                events = select.POLLOUT
            else:
                raise psycopg2.OperationalError(f"unexpected connection poll state {state}")
            poller = select.poll()  # not select.select: a worker may hold descriptors past FD_SETSIZE
            poller.register(connection.fileno(), events)
            ready = poller.poll(math.ceil(remaining * 1000))
        if not ready:
            raise _Stalled


class PostgisTimezoneIndex:
    backend = "postgis"

    def __init__(self, dsn: str, statement_timeout_ms: int = 200, pool_size: int = 4, retry_after: float = 1.0,
                 pool_wait: float | None = None):
        self._dsn = dsn
        self._statement_timeout_ms = int(statement_timeout_ms)
        self._pool_size = int(pool_size)
        self._retry_after = float(retry_after)
        self._lock = threading.Lock()
        self._pool: psycopg2.pool.ThreadedConnectionPool | None = None
        self._pool_pid: int | None = None
        # More threads than connections wait for one, by default no longer than two queries may take;
        # past that the lookup degrades ("busy") without marking the backend down.
        self._slots = threading.BoundedSemaphore(self._pool_size)
        self._pool_wait = 2 * self._statement_timeout_ms / 1000 if pool_wait is None else float(pool_wait)
        statement_timeout = self._statement_timeout_ms / 1000
        # The most a call waits on PostGIS (connect, PREPARE, a stale socket's retry and the query).
        self.query_bound = statement_timeout + max(QUERY_MARGIN_S, statement_timeout / 2)
        self.status_bound = self.query_bound + STATUS_EXTRA_S
        self._down_until = 0.0
        self._last_error: str | None = None
        self._version = None
        self._version_due = 0.0
        self._version_lock = threading.Lock()

    # -- pool --------------------------------------------------------------------------------

    def _get_pool(self) -> psycopg2.pool.ThreadedConnectionPool:
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                # minconn=0 so that nothing connects here (a dead server must not break startup),
                # then raised: psycopg2 closes every returned connection beyond minconn, which
                # would mean one new connection per lookup.
                self._pool = psycopg2.pool.ThreadedConnectionPool(
                    0, self._pool_size, self._dsn,
                    connection_factory=_Connection,
                    async_=True,  # connects without waiting: _wait bounds it with the call
                    application_name="easy-geoip",
                    options=(f"-c statement_timeout={self._statement_timeout_ms} -c jit=off "
                             "-c plan_cache_mode=force_generic_plan"),
                )
                self._pool.minconn = self._pool_size
                self._pool_pid = os.getpid()
            return self._pool

    def _is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _mark_down(self, reason: str) -> None:
        self._down_until = time.monotonic() + self._retry_after
        self._last_error = reason

    def _run(self, query: str, params: tuple = (), bound: float | None = None):
        """One row of `query` on a pooled connection, within `bound` seconds (query_bound unless
        told); TimezoneBackendUnavailable on any failure."""
        if self._is_down():
            raise TimezoneBackendUnavailable(self._last_error or "PostGIS is unavailable")
        if not self._slots.acquire(timeout=self._pool_wait):
            raise TimezoneBackendUnavailable("all PostGIS connections are busy")
        try:
            if self._is_down():  # the call that held the connection found PostGIS gone meanwhile
                raise TimezoneBackendUnavailable(self._last_error or "PostGIS is unavailable")
            bound = self.query_bound if bound is None else bound
            return self._run_on_pool(query, params, time.monotonic() + bound, bound)
        finally:
            self._slots.release()

    def _run_on_pool(self, query: str, params: tuple, deadline: float, bound: float):
        pool = self._get_pool()
        # A pooled connection may have died with a server restart; one fresh retry tells a stale
        # socket apart from a server that is really gone.
        for attempt in (1, 2):
            connection, reused = None, False
            try:
                connection = pool.getconn()
                reused = connection.prepared
                return self._query(connection, query, params, deadline)
            except _Stalled:
                # Stopped or cut off: whatever is in flight is dropped with its connection (a socket
                # that may still deliver a late answer is never reused).
                pool.putconn(connection, close=True)
                connection = None
                self._mark_down(f"PostGIS did not answer within {bound * 1000:.0f} ms (stalled)")
                raise TimezoneBackendUnavailable(self._last_error) from None
            except psycopg2.extensions.QueryCanceledError:
                # statement timeout: the session itself is fine, the backend is just slow
                self._mark_down("PostGIS did not answer within the statement timeout")
                raise TimezoneBackendUnavailable(self._last_error) from None
            except (psycopg2.Error, psycopg2.pool.PoolError) as exc:
                if connection is not None:
                    pool.putconn(connection, close=True)
                    connection = None
                if isinstance(exc, psycopg2.errors.UndefinedTable):
                    self._mark_down("tz_world is not loaded in this database (run `cli.py load-tz-world`)")
                    raise TimezoneBackendUnavailable(self._last_error) from None
                if attempt == 1 and reused and not isinstance(exc, psycopg2.pool.PoolError):
                    continue
                self._mark_down(f"PostGIS unavailable: {_first_line(exc)}")
                raise TimezoneBackendUnavailable(self._last_error) from None
            finally:
                if connection is not None:
                    pool.putconn(connection)

    @staticmethod
    def _query(connection: _Connection, query: str, params: tuple, deadline: float):
        # An asynchronous connection is always in autocommit.
        if connection.poller is None:
            _wait(connection, deadline)
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN)
            connection.poller, connection.cursor_ = poller, connection.cursor()
        cursor = connection.cursor_
        if not connection.prepared:
            cursor.execute(_PREPARE)
            _wait(connection, deadline)
            connection.prepared = True
        cursor.execute(query, params)
        _wait(connection, deadline)
        return cursor.fetchone()

    # -- the index contract ------------------------------------------------------------------

    @property
    def version(self):
        """Which tz_world load answers (its loaded_at): `cli.py load-tz-world` makes a new one.
        Asked at most every VERSION_CHECK_INTERVAL by one thread; while PostGIS cannot say, the
        last known version stands (lookups then fail or succeed on their own)."""
        if time.monotonic() >= self._version_due and self._version_lock.acquire(blocking=False):
            try:
                self._version_due = time.monotonic() + VERSION_CHECK_INTERVAL
                row = self._run(_LOADED_AT_QUERY)
                self._version = row[0] if row else None
            except TimezoneBackendUnavailable:
                pass
            finally:
                self._version_lock.release()
        return self._version

    def zone_at(self, latitude: float, longitude: float) -> ZoneMatch | None:
        if not (math.isfinite(latitude) and math.isfinite(longitude)):
            return None
        if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
            return None
        row = self._run(_EXECUTE, (float(latitude), float(longitude)))
        if row is None:
            return None
        return ZoneMatch(row[0], is_ocean_zone(row[0]))

    def status(self) -> dict:
        result = {"backend": self.backend, "state": "unavailable", "detail": None,
                  "data_release": None, "attribution": ATTRIBUTION}
        try:
            row = self._run(_RELEASE_QUERY, bound=self.status_bound)
        except TimezoneBackendUnavailable as exc:
            result["detail"] = str(exc)
            return result
        if row is None:
            result["detail"] = "tz_world is empty: run `cli.py load-tz-world`"
            return result
        release, package_version, zones, loaded_at = row
        result.update(
            state="ok",
            detail=f"PostGIS tz_world, {zones} zones, loaded {loaded_at:%Y-%m-%d %H:%M %Z}".strip(),
            data_release=f"{release} (timezonefinder-data {package_version})",
        )
        return result

    def close(self) -> None:
        with self._lock:
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.closeall()
            self._pool = None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
