"""The collaborators one worker needs, built from the config; no Flask here."""
from __future__ import annotations

import time

from .citydb import CityDatabase
from .config import Config
from .errors import TimezoneBackendUnavailable
from .fleet.status import pull_readiness
from .lookup import ATTRIBUTIONS, LookupService
from .resolver import DnsResolver
from .timezones import open_timezone_index


class Services:
    def __init__(self, config: Config):
        self.config = config
        self.city_db = CityDatabase(config.city_db_path, config.city_db_check_interval,
                                    copy_dir=config.city_db_copy_dir, record_cache_size=config.record_cache_size)
        self.resolver = DnsResolver(config.dns_nameservers, config.dns_timeout, config.dns_cache_size)
        self.timezones = open_timezone_index(config)
        self.lookup = LookupService(self.city_db, self.resolver, self.timezones,
                                    source_label=config.db_source_label,
                                    batch_concurrency=config.batch_concurrency,
                                    batch_dns_budget=2 * config.dns_timeout)

    def warm_up(self) -> None:
        """Open now what a worker's first lookup would otherwise open while requests wait on it
        (the City map and its record-offset reader, a time-zone finder or the PostGIS pool).
        app/wsgi.py calls it in each uWSGI worker before the worker accepts a request."""
        self.city_db.info  # noqa: B018 - opens the file
        try:
            self.timezones.zone_at(0.0, 0.0)
        except TimezoneBackendUnavailable:
            pass  # a backend that is down now is tried again by the lookups that need it

    def readiness(self) -> dict:
        """What /readyz and `cli.py status` report. "unavailable" only when no City DB is loaded."""
        info = self.city_db.info
        database = {"path": self.config.city_db_path, "loaded": info is not None, "error": self.city_db.last_error}
        if info is not None:
            age_days = info.age_days(time.time())
            database.update(
                type=info.database_type,
                build_date=info.build_date,
                age_days=age_days,
                stale=age_days > self.config.city_db_max_age_days,
                source=self.config.db_source_label or info.source,
                ip_version=info.ip_version,
                node_count=info.node_count,
                attribution=ATTRIBUTIONS.get(info.source),
                record_cache=self.city_db.cache_info(),
            )
        timezone = self.timezones.status()
        pull = pull_readiness(self.config.pull) if self.config.pull else None
        if info is None:
            status = "unavailable"
        elif (self.city_db.last_error or database["stale"] or timezone.get("state") != "ok"
              or (pull is not None and not pull["ok"])):
            status = "degraded"
        else:
            status = "ready"
        report = {"status": status, "database": database, "timezone": timezone}
        if pull is not None:
            report["pull"] = pull
        return report
