"""app.wsgi with knobs for tests of worker start-up and replacement (NativeStack(wsgi_module=
"tests.support.instrumented_wsgi:application")), set through the stack's environment:

    TEST_CITY_OPEN_DELAY=3     the first open of the City database in a worker takes 3 s longer,
                               so a request that waits for a worker's start-up is plain to see
    TEST_MEMORY_CHECK_INTERVAL app/worker_memory.py's check interval and settle time, seconds
    TEST_SERVED_MARKERS=1      each worker creates $GEOIP_RUN_DIR/served-<pid> when it serves its
                               first request

Nothing here changes what the app answers.
"""
from __future__ import annotations

import os
import time

from app import citydb, worker_memory

_open_delay = float(os.environ.get("TEST_CITY_OPEN_DELAY") or 0)
if _open_delay:
    _load = citydb.CityDatabase._load_current_file

    def _slow_first_load(self):
        if self._loaded is None:
            time.sleep(_open_delay)
        return _load(self)

    citydb.CityDatabase._load_current_file = _slow_first_load

if os.environ.get("TEST_MEMORY_CHECK_INTERVAL"):
    worker_memory.CHECK_INTERVAL_SECONDS = worker_memory.SETTLE_SECONDS = float(os.environ["TEST_MEMORY_CHECK_INTERVAL"])

from app.wsgi import application as _application  # noqa: E402 - after the knobs are set

_markers = os.environ.get("GEOIP_RUN_DIR") if os.environ.get("TEST_SERVED_MARKERS") else None
_marked = False


def application(environ, start_response):
    global _marked
    if _markers and not _marked:
        _marked = True
        open(os.path.join(_markers, f"served-{os.getpid()}"), "w").close()
    return _application(environ, start_response)
