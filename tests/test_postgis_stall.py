"""A PostGIS that stops answering without closing anything (its processes SIGSTOPped, as in a network
partition): every call of the index gives up within its bound, never waits on the server.

With one thread per uWSGI worker a call that blocks on PostGIS blocks the whole worker, and on a
stalled server neither the statement timeout (the server enforces it) nor libpq (no bound on an
established connection, a 2 s floor on a connect) ends the wait. The index bounds each call itself
(`query_bound`, `status_bound`), closes the connection that missed it and is then down for
`retry_after`.

Each call on a stalled server runs under a guard that fails the test with "blocked > N s" at five
times the call's bound (generous: the call's own timer ends it at 1x); the checks that it took the
bounded path are structural (the reason it gives, the connection it used closed, no connection
left in use, no descriptor or thread left behind). The server always gets SIGCONT back.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import pytest

import app.timezones.postgis as postgis
from app.errors import TimezoneBackendUnavailable
from app.timezones.base import ZoneMatch
from app.timezones.postgis import PostgisTimezoneIndex
from tests.support.postgres import private_tz_server

pytestmark = pytest.mark.slow

LONDON, PARIS = (51.5074, -0.1278), (48.8566, 2.3522)
# Production's statement timeout: the bound under test is the one a worker really gets (300 ms).
STATEMENT_TIMEOUT_MS = 200
GUARD_FACTOR = 5


@pytest.fixture(scope="module")
def server():
    """A private cluster with a few zones: these tests stop its processes (never the shared one)."""
    with private_tz_server("tz_world_stall") as server:
        yield server


# -- the server's processes ---------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(child) for child in handle.read().split()]
    return found


def server_processes(server) -> list[int]:
    """The postmaster (from its pid file in the cluster's data dir) and every process below it."""
    postmaster = int((server.data_dir / "postmaster.pid").read_text().splitlines()[0])
    processes, pending = [], [postmaster]
    while pending:
        pid = pending.pop()
        processes.append(pid)
        pending += _children(pid)
    return processes


# Stopped, or gone: a backend that exited just before its postmaster stopped stays a zombie.
_STOPPED = ("T", "t", "Z", "X", None)


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None  # gone


@contextlib.contextmanager
def stalled(server):
    """Every process of the cluster stopped (the postmaster first, so it forks nothing meanwhile):
    sockets stay open, the kernel still accepts connections into the backlog, nothing answers."""
    postmaster = server_processes(server)[0]
    stopped = []
    try:
        os.kill(postmaster, signal.SIGSTOP)
        stopped.append(postmaster)
        deadline = time.monotonic() + 10
        while _state(postmaster) not in _STOPPED and time.monotonic() < deadline:
            time.sleep(0.01)
        for pid in server_processes(server)[1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        while any(_state(pid) not in _STOPPED for pid in stopped) and time.monotonic() < deadline:
            time.sleep(0.01)
        states = {pid: _state(pid) for pid in stopped}
        assert all(state in _STOPPED for state in states.values()), f"the server did not stop: {states}"
        yield stopped
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


# -- the index's side ---------------------------------------------------------------------------

class Outcome:
    value = None
    error: BaseException | None = None
    elapsed: float = 0.0


def guarded(call, limit: float) -> Outcome:
    """`call()` in a thread; the test fails if it has not returned after `limit` seconds."""
    outcome = Outcome()

    def run():
        started = time.monotonic()
        try:
            outcome.value = call()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcome.error = exc
        outcome.elapsed = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True, name="stall-guarded-call")
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        pytest.fail(f"blocked > {limit:.1f} s on a stalled PostGIS (the call's bound is {limit / GUARD_FACTOR:.2f} s)")
    return outcome


def make_index(server, **kwargs) -> PostgisTimezoneIndex:
    settings = {"statement_timeout_ms": STATEMENT_TIMEOUT_MS, "pool_size": 2, "retry_after": 0.5, **kwargs}
    return PostgisTimezoneIndex(server.tz_dsn, **settings)


def answer_within(index, point, periods: int, expected: str) -> ZoneMatch:
    """The index's answer once it gives one, within `periods` retry periods (a loaded machine may make
    a first connect miss the bound: that is one more period down, not a failure to recover)."""
    deadline = time.monotonic() + periods * index._retry_after
    while True:
        try:
            match = index.zone_at(*point)
            assert match.name == expected
            return match
        except TimezoneBackendUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(index._retry_after / 5)


def pool_connections(index) -> tuple[list, list]:
    """(idle, in use) connections of the index's psycopg2 pool."""
    pool = index._pool
    return list(pool._pool), list(pool._used.values())


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def counted_checkouts(index):
    """Counts connections taken from the pool, and the most ever out at once."""
    pool = index._pool
    getconn, putconn = pool.getconn, pool.putconn
    counts = {"taken": 0, "out": 0, "most_out": 0}
    lock = threading.Lock()

    def counting_getconn(*args, **kwargs):
        connection = getconn(*args, **kwargs)
        with lock:
            counts["taken"] += 1
            counts["out"] += 1
            counts["most_out"] = max(counts["most_out"], counts["out"])
        return connection

    def counting_putconn(*args, **kwargs):
        with lock:
            counts["out"] -= 1
        return putconn(*args, **kwargs)

    pool.getconn, pool.putconn = counting_getconn, counting_putconn
    try:
        yield counts
    finally:
        del pool.getconn, pool.putconn


# -- tests --------------------------------------------------------------------------------------

def test_a_lookup_on_a_live_connection_to_a_stalled_server_gives_up_within_its_bound(server):
    # a long retry period, so that the down-period checks below all fall inside it however slow the machine
    index = make_index(server, retry_after=2.0)
    try:
        answer_within(index, PARIS, 10, "Europe/Paris")
        version = index.version
        assert version is not None
        idle, in_use = pool_connections(index)
        assert idle and not in_use and not any(connection.closed for connection in idle)
        descriptors, threads = open_descriptors(), threading.active_count()

        with stalled(server):
            outcome = guarded(lambda: index.zone_at(*LONDON), GUARD_FACTOR * index.query_bound)
            assert isinstance(outcome.error, TimezoneBackendUnavailable), outcome.error or outcome.value
            failed_at = time.monotonic()
            # The index's own bound ended the wait (not a server error, not libpq): it says so, and the
            # connection that was waiting is closed, not back in the pool.
            assert "stalled" in str(outcome.error) and f"{index.query_bound * 1000:.0f} ms" in str(outcome.error)
            idle_after, in_use_after = pool_connections(index)
            assert not in_use_after
            assert all(connection.closed for connection in idle if connection not in idle_after)
            assert len(idle_after) < len(idle) and not any(connection.closed for connection in idle_after)
            assert open_descriptors() < descriptors and threading.active_count() == threads

            # Down for retry_after: every call answers at once, without touching a connection.
            with counted_checkouts(index) as counts:
                for point in (LONDON, PARIS) * 10:
                    quick = guarded(lambda point=point: index.zone_at(*point), GUARD_FACTOR * index.query_bound)
                    assert isinstance(quick.error, TimezoneBackendUnavailable) and "stalled" in str(quick.error)
                assert index.version == version  # the last known load stands
                status = guarded(index.status, GUARD_FACTOR * index.status_bound).value
                assert status["state"] == "unavailable" and "stalled" in status["detail"]
                assert counts["taken"] == 0
            assert time.monotonic() < failed_at + 2.0, "the machine was too slow to check the down period"

        # Resumed: the same object answers again, on a fresh connection.
        assert answer_within(index, LONDON, 4, "Europe/London") == ZoneMatch("Europe/London", False)
        assert index.status()["state"] == "ok"
    finally:
        index.close()


def test_every_call_keeps_its_bound_while_the_server_stays_stalled(server, monkeypatch):
    monkeypatch.setattr(postgis, "VERSION_CHECK_INTERVAL", 0.0)  # `version` asks on every call
    index = make_index(server, retry_after=0.3)
    try:
        answer_within(index, PARIS, 10, "Europe/Paris")
        version = index.version
        assert version is not None
        descriptors, threads = open_descriptors(), threading.active_count()
        calls = {"zone_at": (lambda: index.zone_at(*LONDON), index.query_bound),
                 "version": (lambda: index.version, index.query_bound),
                 "status": (index.status, index.status_bound)}

        with stalled(server):
            # One retry period after another: each period's first call tries the server again (the
            # first on the live connection, then new connects into the stopped postmaster's backlog),
            # gives up within its bound and closes what it opened.
            for name in ("zone_at", "version", "status") * 2:
                time.sleep(index._retry_after)  # the down period is over: this call tries the server
                call, bound = calls[name]
                with counted_checkouts(index) as counts:
                    outcome = guarded(call, GUARD_FACTOR * bound)
                assert counts["taken"] == 1, name
                if name == "zone_at":
                    assert isinstance(outcome.error, TimezoneBackendUnavailable), outcome.error or outcome.value
                    assert "stalled" in str(outcome.error)
                elif name == "version":
                    assert outcome.error is None and outcome.value == version  # the last known load stands
                    assert "stalled" in index.status()["detail"]  # and it marked the backend down
                else:
                    assert outcome.value["state"] == "unavailable", outcome.value
                    assert f"within {bound * 1000:.0f} ms (stalled)" in outcome.value["detail"]
                assert pool_connections(index) == ([], []), name  # nothing kept, nothing in use
            assert open_descriptors() < descriptors and threading.active_count() == threads

        assert answer_within(index, LONDON, 6, "Europe/London").name == "Europe/London"
        assert index.status()["state"] == "ok"
    finally:
        index.close()


def test_a_first_connect_to_a_stalled_server_gives_up_within_its_bound(server):
    # A new index (a worker just forked), the server stalled before its first call. libpq alone would
    # wait 2 s (connect_timeout's floor) and then say "timeout expired".
    lookup_index, status_index = make_index(server), make_index(server)
    try:
        descriptors, threads = open_descriptors(), threading.active_count()
        with stalled(server):
            outcome = guarded(lambda: lookup_index.zone_at(*PARIS), GUARD_FACTOR * lookup_index.query_bound)
            assert isinstance(outcome.error, TimezoneBackendUnavailable), outcome.error or outcome.value
            assert "stalled" in str(outcome.error)  # libpq's would be "timeout expired", after 2 s

            status = guarded(status_index.status, GUARD_FACTOR * status_index.status_bound)
            assert status.value["state"] == "unavailable" and "stalled" in status.value["detail"]
            assert f"{status_index.status_bound * 1000:.0f} ms" in status.value["detail"]

            for index in (lookup_index, status_index):
                assert pool_connections(index) == ([], [])
            assert open_descriptors() <= descriptors and threading.active_count() == threads

        assert answer_within(lookup_index, PARIS, 6, "Europe/Paris") == ZoneMatch("Europe/Paris", False)
        time.sleep(status_index._retry_after)
        assert status_index.status()["state"] == "ok"
    finally:
        lookup_index.close()
        status_index.close()


def test_concurrent_callers_during_a_stall_hold_at_most_the_pool(server):
    index = make_index(server, pool_size=2)
    try:
        answer_within(index, PARIS, 10, "Europe/Paris")
        descriptors = open_descriptors()
        callers = 3 * index._pool_size
        start = threading.Barrier(callers + 1)
        outcomes = []

        def lookup():
            start.wait()
            return index.zone_at(*LONDON)

        limit = GUARD_FACTOR * (index._pool_wait + index.query_bound)
        with stalled(server), counted_checkouts(index) as counts:
            runners = [threading.Thread(target=lambda: outcomes.append(guarded(lookup, limit)), daemon=True)
                       for _ in range(callers)]
            for runner in runners:
                runner.start()
            start.wait()
            for runner in runners:
                runner.join(2 * limit)
            assert len(outcomes) == callers, f"blocked > {2 * limit:.1f} s on a stalled PostGIS"
            assert all(isinstance(outcome.error, TimezoneBackendUnavailable) for outcome in outcomes)
            assert any("stalled" in str(outcome.error) for outcome in outcomes)
            assert 1 <= counts["most_out"] <= index._pool_size
            assert not pool_connections(index)[1]
            assert open_descriptors() <= descriptors

        assert answer_within(index, LONDON, 6, "Europe/London").name == "Europe/London"
    finally:
        index.close()
