"""Memory experiment (figure 6): the app's libraries imported once in the uWSGI master.

With `lazy-apps = true` every worker imports Flask, Werkzeug, the app and the time-zone index's
libraries after fork, so none of that heap is shared. Loaded in the master with uWSGI's
`shared-import` (set through the UWSGI_SHARED_IMPORT environment variable, no config change),
the modules are inherited copy-on-write; the app itself, its City map, DNS threads and PostGIS
pool are still created per worker after fork. Nothing here opens a file or starts a thread.
"""
import flask  # noqa: F401
import h3.api.numpy_int  # noqa: F401
import numpy  # noqa: F401
import timezonefinder  # noqa: F401

import app.http.api  # noqa: F401
import app.http.geoip_compat  # noqa: F401
import app.services  # noqa: F401
import app.timezones.embedded  # noqa: F401
