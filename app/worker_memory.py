"""Replace a uWSGI worker whose memory grew past a bound, instead of after a number of requests.

Recycling by request count (`max-requests`) replaced each worker every couple of seconds under
load, and every replacement is a new worker with empty caches. Memory is flat in normal
operation (bench/README.md, figure 6: a worker's anonymous memory settles at about 50 MB with
full caches), so a worker is replaced only when its anonymous resident memory passes
GEOIP_WORKER_MEMORY_LIMIT_MB: a leak, not traffic, decides.

Anonymous memory (RssAnon), not RSS: RSS counts the pages of the memory-mapped City file a
worker has touched, which grows to the file's size and is shared by every worker, so a bound on
RSS would depend on which database is loaded. uWSGI's own `reload-on-rss` also reads
/proc/self/stat after every request, which for a worker with 64 threads costs more than a
lookup; this guard reads /proc/self/status from one thread every `interval` seconds.

The replacement is uWSGI's graceful one: SIGHUP to the worker itself, which stops accepting
requests, finishes those it has, and exits; the master forks a new worker, which loads the app
(and opens the databases, app/wsgi.py) before it accepts anything, while the other workers take
the traffic. So that there are other workers to take it, a worker waits while another one is
starting or has just started (`others_settled`, from uWSGI's table of workers).
"""
from __future__ import annotations

import logging
import os
import random
import signal
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

STATUS_PATH = "/proc/self/status"
CHECK_INTERVAL_SECONDS = 10.0
# A worker waits to leave while another one started less than this long ago.
SETTLE_SECONDS = 30.0


def anonymous_resident_bytes(status_text: str) -> int | None:
    """RssAnon from the text of /proc/<pid>/status, in bytes (None when absent)."""
    for line in status_text.splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024  # always in kB
    return None


def _read_status() -> str:
    with open(STATUS_PATH) as handle:
        return handle.read()


def _recycle_this_worker() -> None:
    os.kill(os.getpid(), signal.SIGHUP)  # uWSGI: graceful reload of this worker only


def uwsgi_others_settled() -> bool:
    """Every other uWSGI worker is up, has loaded the app, and started over SETTLE_SECONDS ago."""
    import uwsgi  # only inside a uWSGI worker

    now = time.time()
    return all(worker["pid"] > 0 and worker["apps"] and now - worker["last_spawn"] >= SETTLE_SECONDS
               for worker in uwsgi.workers() if worker["pid"] != os.getpid())


class MemoryGuard:
    """`check()` replaces the worker once its anonymous memory passes `limit_bytes`."""

    def __init__(self, limit_bytes: int, *, read_status: Callable[[], str] = _read_status,
                 recycle: Callable[[], None] = _recycle_this_worker,
                 others_settled: Callable[[], bool] = lambda: True):
        self.limit_bytes = limit_bytes
        self._read_status = read_status
        self._recycle = recycle
        self._others_settled = others_settled
        self.recycled = False

    def check(self) -> bool:
        """True when the worker was asked to leave (at most once)."""
        if self.recycled:
            return True
        try:
            used = anonymous_resident_bytes(self._read_status())
        except OSError:
            return False
        if used is None or used <= self.limit_bytes or not self._others_settled():
            return False
        log.warning("worker %d uses %.0f MB of anonymous memory (limit %.0f MB): replacing it",
                    os.getpid(), used / 2**20, self.limit_bytes / 2**20)
        self.recycled = True
        self._recycle()
        return True

    def start(self, interval: float | None = None) -> threading.Thread:
        """Check every `interval` seconds from a daemon thread; the first check comes after a random
        part of the interval, so workers whose memory grows alike are not all replaced at once."""
        interval = interval or CHECK_INTERVAL_SECONDS
        stop = threading.Event()

        def run() -> None:
            delay = random.uniform(0.5, 1.0) * interval
            while not stop.wait(delay) and not self.check():
                delay = interval

        thread = threading.Thread(target=run, name="memory-guard", daemon=True)
        thread.stop = stop  # type: ignore[attr-defined]
        thread.start()
        return thread
