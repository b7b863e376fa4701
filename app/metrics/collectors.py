"""Gauges read when /metrics is scraped, by the worker that serves the scrape.

Every worker sees the same databases, the same time-zone backend and the same updater state
file, so the scraping worker's view is the service's; nothing here is added up across workers.
"""
from __future__ import annotations

import time

from prometheus_client.core import GaugeMetricFamily

from ..updater.state import UpdateState


class DatabaseCollector:
    """Per loaded database: build timestamp, age, loaded or not (Services.loaded_sources())."""

    def __init__(self, services, clock=time.time):
        self.services = services
        self.clock = clock

    def describe(self):
        return []

    def collect(self):
        build = GaugeMetricFamily("geoip_database_build_timestamp_seconds",
                                  "When the database serving now was built (its metadata), Unix time.",
                                  labels=["database"])
        age = GaugeMetricFamily("geoip_database_age_seconds", "Age of the database serving now.",
                                labels=["database"])
        loaded = GaugeMetricFamily("geoip_database_loaded", "1 when a database file is loaded and serving.",
                                   labels=["database"])
        now = self.clock()
        for source in self.services.loaded_sources():
            loaded.add_metric([source.name], 1.0 if source.build_epoch is not None else 0.0)
            if source.build_epoch is not None:
                build.add_metric([source.name], float(source.build_epoch))
                age.add_metric([source.name], max(0.0, now - source.build_epoch))
        yield from (build, age, loaded)


class TimezoneCollector:
    def __init__(self, services):
        self.services = services

    def describe(self):
        return []

    def collect(self):
        status = self.services.timezones.status()
        up = GaugeMetricFamily("geoip_timezone_backend_up", "1 when the time-zone backend answers.",
                               labels=["backend"])
        up.add_metric([str(status.get("backend", "unknown"))], 1.0 if status.get("state") == "ok" else 0.0)
        yield up


class UpdaterCollector:
    """The updater's state file beside each live database (`cli.py update-db` and the scheduled
    updater write it): last attempt, last success, whether the last attempt failed."""

    def __init__(self, database_paths):
        self.database_paths = tuple(database_paths)  # (name, live path) pairs

    def describe(self):
        return []

    def collect(self):
        attempt = GaugeMetricFamily("geoip_updater_last_attempt_timestamp_seconds",
                                    "When the updater last tried to update the database, Unix time.",
                                    labels=["database"])
        success = GaugeMetricFamily("geoip_updater_last_success_timestamp_seconds",
                                    "When an update attempt last ended with the database current, Unix time.",
                                    labels=["database"])
        failed = GaugeMetricFamily("geoip_updater_last_attempt_failed",
                                   "1 when the updater's last attempt failed (the live file stayed as it was).",
                                   labels=["database"])
        for name, path in self.database_paths:
            state = UpdateState.load(path)
            if state.last_check is None:
                continue  # never run against this file (or a replica that pulls its databases)
            attempt.add_metric([name], float(state.last_check))
            failed.add_metric([name], 1.0 if state.last_outcome == "failed" else 0.0)
            if state.last_success is not None:
                success.add_metric([name], float(state.last_success))
        yield from (attempt, success, failed)
