"""Imported once in the uWSGI master (`shared-import`), so workers share these modules' memory.

Imports only (and it empties the metrics directory of a previous run): nothing here opens the
City database, starts a thread or connects to PostGIS.
The app itself is still created in each worker after fork (`lazy-apps`), which keeps the City
map, the DNS thread pool and the PostGIS pool per worker. Measured in bench/README.md (figure
6): about 12 MB less private memory per extra worker.
"""
from app.metrics import empty_multiprocess_dir

empty_multiprocess_dir()  # before any worker counts: files of a previous uWSGI run would add up

import flask  # noqa: F401,E402
import numpy  # noqa: F401
import orjson  # noqa: F401
import timezonefinder  # noqa: F401

import prometheus_client  # noqa: F401,E402

import app.http.api  # noqa: F401,E402
import app.http.geoip_compat  # noqa: F401
import app.http.page  # noqa: F401
import app.metrics.collectors  # noqa: F401
import app.metrics.instruments  # noqa: F401
import app.metrics.middleware  # noqa: F401
import app.services  # noqa: F401
import app.timezones.embedded  # noqa: F401
import app.timezones.postgis  # noqa: F401

import gc  # noqa: E402

# Everything imported above moves to the collector's permanent generation: a worker's collections
# then never walk those objects, whose headers they would write to, so their pages stay shared
# with the master instead of being copied into every worker (measured in bench/README.md, figure 6).
gc.freeze()
