"""Workers are replaced on memory growth, never by request count, and a replacement never makes
requests wait for its start-up (issue 13, item 4).

With `max-requests = 20000` uWSGI replaced each worker every couple of seconds under load, and
each new worker opened the City database on its first lookup while the requests it had accepted
waited: a p99 of hundreds of milliseconds. Now docker/uwsgi.ini recycles by request count only
when GEOIP_MAX_REQUESTS asks for it, app/worker_memory.py replaces a worker whose anonymous memory
passes GEOIP_WORKER_MEMORY_LIMIT_MB, and app/wsgi.py opens the databases before a worker accepts.

The native-stack test makes the City database's first open slow on purpose (3 s, through
tests/support/instrumented_wsgi.py): a request that waited for a worker's start-up would take that
long, one that the other worker took does not.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from app.config import Config
from app.worker_memory import MemoryGuard, anonymous_resident_bytes
from tests.support.city_fixtures import write_city_db
from tests.support.load import Request, SteadyLoad
from tests.support.native_stack import NativeStack, uwsgi_setting

OPEN_DELAY = 3.0
LOAD_CLIENTS = 4
MIX = [Request("/api/v1/lookup/81.2.69.160"), Request("/api/v1/lookup/2a02:d5c0::10"),
       Request("/api/v1/lookup/9.9.9.9"), Request("/geoip/v2.1/city/81.2.69.160", "maxmind")]


# -- the configuration -----------------------------------------------------------------------------

def test_default_config_recycles_no_worker_by_request_count():
    assert uwsgi_setting("max-requests") == ""
    # uWSGI's memory options read /proc after every request (costlier than a lookup with 64 threads);
    # app/worker_memory.py checks from one thread instead.
    for option in ("reload-on-rss", "reload-on-as", "reload-on-uss", "max-worker-lifetime"):
        assert uwsgi_setting(option) == "", option


def test_request_count_recycling_only_when_asked_for():
    assert uwsgi_setting("max-requests", {"GEOIP_MAX_REQUESTS": "50000"}) == "50000"


def test_memory_limit_setting():
    assert Config.from_env({}).worker_memory_limit_mb == 256
    assert Config.from_env({"GEOIP_WORKER_MEMORY_LIMIT_MB": "0"}).worker_memory_limit_mb == 0  # off


# -- the memory guard ----------------------------------------------------------------------------

def status_text(anonymous_kb: int) -> str:
    return f"Name:\tuwsgi\nVmRSS:\t{anonymous_kb + 80_000} kB\nRssAnon:\t{anonymous_kb} kB\nRssFile:\t80000 kB\n"


def test_rss_anon_is_read_from_proc_status():
    assert anonymous_resident_bytes(status_text(51_200)) == 51_200 * 1024
    assert anonymous_resident_bytes("Name:\tx\n") is None
    assert anonymous_resident_bytes(Path("/proc/self/status").read_text()) > 0


def test_guard_replaces_the_worker_once_past_the_limit():
    used = [100_000]
    recycled = []
    guard = MemoryGuard(200 * 2**20, read_status=lambda: status_text(used[0]), recycle=lambda: recycled.append(1))
    assert guard.check() is False and recycled == []
    used[0] = 200 * 1024  # exactly the limit: still fine
    assert guard.check() is False
    used[0] = 200 * 1024 + 1
    assert guard.check() is True and recycled == [1]
    assert guard.check() is True and recycled == [1]  # asked once


def test_guard_waits_while_another_worker_is_starting():
    recycled = []
    settled = [False]
    guard = MemoryGuard(1, read_status=lambda: status_text(10), recycle=lambda: recycled.append(1),
                        others_settled=lambda: settled[0])
    assert guard.check() is False and recycled == []
    settled[0] = True
    assert guard.check() is True and recycled == [1]


def test_guard_ignores_an_unreadable_status():
    def unreadable():
        raise OSError("gone")

    guard = MemoryGuard(1, read_status=unreadable, recycle=lambda: pytest.fail("recycled"))
    assert guard.check() is False


def test_guard_thread_checks_on_its_own():
    recycled = []
    guard = MemoryGuard(1, read_status=lambda: status_text(10), recycle=lambda: recycled.append(1))
    thread = guard.start(interval=0.05)
    thread.join(10)
    assert not thread.is_alive() and recycled == [1]


# -- the real stack --------------------------------------------------------------------------------

@pytest.fixture
def slow_open_stack(tmp_path):
    with NativeStack(write_city_db(tmp_path / "city.mmdb"), workers=2, threads=8,
                     wsgi_module="tests.support.instrumented_wsgi:application",
                     env={"GEOIP_RATE_LIMIT": "0", "TEST_CITY_OPEN_DELAY": str(OPEN_DELAY),
                          "TEST_SERVED_MARKERS": "1"}) as running:
        yield running


def replacement_of(stack: NativeStack, old: int, known: set[int], timeout: float = 60) -> int:
    """The pid of the worker that replaced `old` (one not in `known`), once it has loaded the app."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = stack.worker_pids()
        new = [pid for pid in workers if pid not in known]
        if old not in workers and len(workers) == stack.workers and new and stack.workers_loaded():
            known.update(new)
            return new[0]
        time.sleep(0.05)
    raise AssertionError(f"worker {old} was not replaced: {stack.worker_pids()}\n{stack.log()[-3000:]}")


def maps_city_copy(stack: NativeStack, pid: int) -> bool:
    return str(stack.city_db_copies) in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.slow
def test_replaced_workers_never_make_requests_wait_for_their_start_up(slow_open_stack):
    stack = slow_open_stack
    first, second = stack.worker_pids()
    known = {first, second}
    # Both workers opened the database while loading (NativeStack has asked only /healthz since).
    assert maps_city_copy(stack, first) and maps_city_copy(stack, second)

    with SteadyLoad(stack.port, MIX, threads=LOAD_CLIENTS, max_seconds=120) as load:
        load.wait_for_requests(200)
        os.kill(first, signal.SIGHUP)  # uWSGI's graceful replacement: what the memory guard sends
        new_first = replacement_of(stack, first, known)
        load.wait_for_requests(len(load.snapshot().samples) + 400)
        kill_at = load.mark("kill")
        os.kill(second, signal.SIGKILL)
        killed = load.mark("killed")
        new_second = replacement_of(stack, second, known)
        load.wait_for_requests(len(load.snapshot().samples) + 400)
    report = load.report

    # Nothing failed before the kill (the graceful replacement included), and the kill failed only
    # requests that were inside the killed worker: sent before it, still unanswered at it.
    failures = report.failures()
    assert all(sample.finished >= kill_at and sample.started < killed for sample in failures), failures
    assert len(failures) <= LOAD_CLIENTS
    # Both replacements served requests under the load, and no request waited for a worker's
    # start-up (OPEN_DELAY inside it).
    for pid in (new_first, new_second):
        assert (stack.run_dir / f"served-{pid}").exists(), f"worker {pid} served nothing"
    slowest = max(sample.latency for sample in report.samples)
    assert slowest < OPEN_DELAY, f"a request waited {slowest:.2f} s: for a worker's start-up"


@pytest.mark.slow
def test_memory_guard_replaces_workers_one_at_a_time_without_failing_requests(tmp_path):
    """A limit every worker is over: the guard replaces them in turn, never both at once."""
    with NativeStack(write_city_db(tmp_path / "city.mmdb"), workers=2, threads=8,
                     wsgi_module="tests.support.instrumented_wsgi:application",
                     env={"GEOIP_RATE_LIMIT": "0", "GEOIP_WORKER_MEMORY_LIMIT_MB": "1",
                          "TEST_MEMORY_CHECK_INTERVAL": "1"}) as stack:
        seen = set(stack.worker_pids())
        with SteadyLoad(stack.port, MIX, threads=LOAD_CLIENTS, max_seconds=120) as load:
            deadline = time.monotonic() + 90
            while len(seen) < 5 and time.monotonic() < deadline:
                workers = stack.worker_pids()
                assert len(workers) >= 1
                seen.update(workers)
                time.sleep(0.05)
        log = stack.log()
    assert len(seen) >= 5, f"the guard replaced too few workers: {sorted(seen)}\n{log[-3000:]}"
    assert "of anonymous memory (limit 1 MB): replacing it" in log
    assert load.report.failures() == [], load.report.statuses()
