"""The compose `updater` service: fill an empty volume first, then check every UPDATE_INTERVAL (± jitter).

Runs `run_update` for every configured edition (City, and ASN when GEOIP_ASN_DB is set) in a loop
until `stop` is set (SIGTERM/SIGINT in `cli.py update-db --schedule`). Each database has its own
lock, state and rollback (all beside its live file); one failing never holds the other back. A
restart does not re-download: a check younger than the interval is skipped. Failures are retried
sooner than the interval, except refusals (quota, credentials) that another try cannot fix; the
next wake-up is the soonest any database needs.
"""
from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from typing import Callable

from ..config import UpdateConfig
from .errors import ExitCode
from .run import UpdateOptions, UpdateResult, run_update
from .state import UpdateState

log = logging.getLogger("app.updater")
EMPTY_VOLUME_RETRY = 300.0     # no database at all: the app is not ready, keep trying
FAILURE_RETRY_CAP = 3600.0     # a failed check with a database in place: try again within the hour


def next_delay(config: UpdateConfig, result: UpdateResult, has_database: bool, rng: random.Random, now: float,
               last_success: float | None) -> float:
    if not has_database:
        return EMPTY_VOLUME_RETRY
    jitter = rng.uniform(-config.jitter, config.jitter)
    if result.outcome == "failed" and result.exit_code not in (ExitCode.QUOTA_REACHED, ExitCode.AUTH_REJECTED, ExitCode.LOCKED):
        return max(60.0, min(config.interval / 4, FAILURE_RETRY_CAP) + jitter / 4)
    if result.outcome == "skipped" and last_success:
        return max(60.0, last_success + config.interval - now + abs(jitter))
    return max(60.0, config.interval + jitter)


def run_schedule(config: UpdateConfig, stop: threading.Event, update: Callable[..., UpdateResult] = run_update,
                 rng: random.Random | None = None, on_result: Callable[[UpdateResult], None] | None = None) -> None:
    rng = rng or random.Random()
    log.info("scheduled updates of %s every %.1f h (jitter %.1f h)", ", ".join(path for _, path in config.database_paths),
             config.interval / 3600, config.jitter / 3600)
    while not stop.is_set():
        delays = []
        for edition, live in config.database_paths:
            # A wake-up up to `jitter` early must still check, hence the margin.
            result = update(config, UpdateOptions(if_older_than=max(0.0, config.interval - config.jitter - 60),
                                                  edition=edition))
            log.info("update-db: %s", json.dumps(result.to_dict(), sort_keys=True))
            if on_result:
                on_result(result)
            delays.append(next_delay(config, result, os.path.exists(live), rng, time.time(),
                                     UpdateState.load(live).last_success))
            if stop.is_set():
                return
        delay = min(delays)
        log.info("next check in %.1f h", delay / 3600)
        stop.wait(delay)
