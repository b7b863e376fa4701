"""uWSGI entry point (`module = app.wsgi:application`). Load it after fork (lazy-apps).

uWSGI loads this module in each worker before the worker accepts its first request, so what the
first lookups would otherwise open while requests wait (the City map, a time-zone finder) is
opened here: a new or replaced worker never stalls the requests it takes.
"""
from . import create_app, logs
from .config import Config
from .worker_memory import MemoryGuard, uwsgi_others_settled

_config = Config.from_env()
logs.configure(_config.log_level)
application = create_app(_config)
_services = application.extensions["geoip"]
_services.warm_up()

try:
    import uwsgi  # noqa: F401 - present only inside a uWSGI worker
except ImportError:
    uwsgi = None
if uwsgi is not None and _services.config.worker_memory_limit_mb:
    MemoryGuard(_services.config.worker_memory_limit_mb * 2**20, others_settled=uwsgi_others_settled).start()
if "geoip_metrics" in application.extensions:
    application.extensions["geoip_metrics"].worker_counters.start()
