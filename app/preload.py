"""Imported once in the uWSGI master (`shared-import`), so workers share these modules' memory.

Imports only: nothing here opens the City database, starts a thread or connects to PostGIS.
The app itself is still created in each worker after fork (`lazy-apps`), which keeps the City
map, the DNS thread pool and the PostGIS pool per worker. Measured in bench/README.md (figure
6): about 12 MB less private memory per extra worker.
"""
import flask  # noqa: F401
import numpy  # noqa: F401
import orjson  # noqa: F401
import timezonefinder  # noqa: F401

import app.http.api  # noqa: F401
import app.http.geoip_compat  # noqa: F401
import app.http.page  # noqa: F401
import app.services  # noqa: F401
import app.timezones.embedded  # noqa: F401
import app.timezones.postgis  # noqa: F401

import gc  # noqa: E402

# Everything imported above moves to the collector's permanent generation: a worker's collections
# then never walk those objects, whose headers they would write to, so their pages stay shared
# with the master instead of being copied into every worker (measured in bench/README.md, figure 6).
gc.freeze()
