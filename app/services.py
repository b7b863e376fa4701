"""The collaborators one worker needs, built from the config; no Flask here."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from .asndb import AsnDatabase
from .citydb import CityDatabase
from .config import Config
from .errors import TimezoneBackendUnavailable
from .hostnames import HostnameResolver
from .lookup import ASN_ATTRIBUTIONS, ATTRIBUTIONS, LookupService
from .overlay import Overlay
from .resolver import DnsResolver
from .timezones import open_timezone_index


@dataclass(frozen=True)
class SourceVersion:
    """A database the answers come from and the version of it serving now."""
    name: str
    build_epoch: int | None  # None: not loaded
    version: str | None  # the same on every replica serving the same file (an ETag input)


class Services:
    def __init__(self, config: Config):
        self.config = config
        self.city_db = CityDatabase(config.city_db_path, config.city_db_check_interval,
                                    copy_dir=config.city_db_copy_dir)
        self.asn_db = (AsnDatabase(config.asn_db_path, config.city_db_check_interval, copy_dir=config.city_db_copy_dir)
                       if config.asn_db_path else None)
        self.resolver = DnsResolver(config.dns_nameservers, config.dns_timeout, config.dns_cache_size,
                                    pool_size=config.dns_pool_size)
        self.timezones = open_timezone_index(config)
        self.overlay = Overlay(config.overlay_sources, config.city_db_check_interval)
        self.hostnames = HostnameResolver(config.dns_nameservers, config.dns_timeout)
        self.lookup = LookupService(self.city_db, self.resolver, self.timezones, asn_db=self.asn_db,
                                    overlay=self.overlay, hostnames=self.hostnames,
                                    hostname_cache_size=config.dns_cache_size,
                                    source_label=config.db_source_label,
                                    record_cache_size=config.record_cache_size,
                                    asn_cache_size=config.record_cache_size,
                                    zone_cache_size=config.tz_cache_size,
                                    batch_concurrency=config.batch_concurrency,
                                    batch_dns_budget=2 * config.dns_timeout)
        self._sources: tuple | None = None  # (what serves, loaded_sources() for it)

    def warm_up(self) -> None:
        """Open now what a worker's first lookup would otherwise open while requests wait on it
        (the City and ASN maps and their native readers, the overlay, a time-zone finder or the
        PostGIS pool).
        app/wsgi.py calls it in each uWSGI worker before the worker accepts a request."""
        for _kind, database, *_rest in self.databases():
            database.info  # noqa: B018 - opens the file
        self.overlay.status()  # reads and validates the geofeed files
        try:
            self.timezones.zone_at(0.0, 0.0)
        except TimezoneBackendUnavailable:
            pass  # a backend that is down now is tried again by the lookups that need it

    def databases(self) -> list[tuple]:
        """(kind, adapter, max age in days, source label, attributions, record cache) per configured database."""
        listed = [("city", self.city_db, self.config.city_db_max_age_days, self.config.db_source_label, ATTRIBUTIONS,
                   self.lookup.city_cache)]
        if self.asn_db is not None:
            listed.append(("asn", self.asn_db, self.config.asn_db_max_age_days, None, ASN_ATTRIBUTIONS,
                           self.lookup.asn_cache))
        return listed

    def loaded_sources(self) -> list[SourceVersion]:
        """Every database answers are made from, with the version serving now (for /metrics and
        the ETag of answers, app/http/caching.py), from databases(); a new adapter adds its database there.
        The same list object while the same versions serve: every answer asks (its ETag), and
        app/http/caching.py keeps what it derives from the list by its identity."""
        serving = (*(database.info for _kind, database, *_ in self.databases()), self.overlay.serving())
        cached = self._sources
        if cached is not None and all(now is then for now, then in zip(serving, cached[0])):
            return cached[1]
        sources = self._read_sources()
        self._sources = (serving, sources)
        return sources

    def _read_sources(self) -> list[SourceVersion]:
        sources = []
        for kind, database, *_ in self.databases():
            info = database.info
            sources.append(SourceVersion(kind, info.build_epoch, f"{info.database_type}/{info.build_epoch}/"
                                         f"{info.node_count}") if info else SourceVersion(kind, None, None))
        if self.overlay.configured:  # its entries change answers like a database does
            live = self.overlay.version()
            sources.append(SourceVersion("overlay", live[0], live[1]) if live else SourceVersion("overlay", None, None))
        return sources

    def readiness(self) -> dict:
        """What /readyz and `cli.py status` report. "unavailable" only when no City DB is loaded;
        "degraded" when any database is stale, failed to load its latest file, or is read
        without the native reader, or the time-zone index cannot answer; an unset GEOIP_ASN_DB
        is neither."""
        now = time.time()
        reports, problems, notes = [], [], []
        for kind, database, max_age, label, attributions, cache in self.databases():
            report = _database_report(kind, database, max_age, label, attributions, cache, now)
            reports.append(report)
            problems.extend(f"{kind}: {problem}" for problem in report["problems"])
            notes.extend(f"{kind}: {note}" for note in report.get("notes", ()))
        if self.asn_db is None:
            reports.append({"kind": "asn", "configured": False, "loaded": False,
                            "detail": "GEOIP_ASN_DB is not set: results carry \"asn\": null"})
        timezone = self.timezones.status()
        timezone["cache"] = self.lookup.zones.info()
        if timezone.get("state") != "ok":
            problems.append(f"timezone: {timezone.get('detail') or 'unavailable'}")
        pull = None
        if self.config.pull:
            from .fleet.status import pull_readiness  # the puller's modules (an HTTP client) only where one pulls
            pull = pull_readiness(self.config.pull)
        if pull is not None and not pull["ok"]:
            problems.append("pull: the databases could not be pulled from the updater")
        overlay = self.overlay.status()
        problems.extend(f"overlay: {problem}" for problem in overlay["problems"])
        city = reports[0]
        status = "unavailable" if not city["loaded"] else "degraded" if problems else "ready"
        report = {"status": status, "problems": problems, "notes": notes, "database": city, "databases": reports,
                  "timezone": timezone, "overlay": overlay}
        if pull is not None:
            report["pull"] = pull
        return report


def _database_report(kind, database, max_age, label, attributions, cache, now) -> dict:
    info = database.info
    report = {"kind": kind, "configured": True, "path": database.path, "loaded": info is not None,
              "error": database.last_error}
    problems = []
    if info is None and kind != "city" and not os.path.exists(database.path):
        # Not installed yet (a first start with no source reachable): the service is ready without it.
        report["notes"] = [f"the {database.kind} database is not installed yet: results carry "
                           f"\"{kind}\": null until the updater installs one"]
    elif database.last_error:
        problems.append(database.last_error)
    if info is not None:
        age_days = info.age_days(now)
        reader = database.reader_status()
        report.update(
            type=info.database_type,
            build_date=info.build_date,
            age_days=age_days,
            stale=age_days > max_age,
            max_age_days=max_age,
            source=label or info.source,
            ip_version=info.ip_version,
            node_count=info.node_count,
            attribution=attributions.get(info.source),
            reader=reader,
            record_cache=cache.info(),
        )
        if report["stale"]:
            problems.append(f"the {database.kind} database is {age_days:g} days old (more than {max_age:g})")
        if reader["problem"]:
            problems.append(reader["problem"])
    report["problems"] = problems
    return report
