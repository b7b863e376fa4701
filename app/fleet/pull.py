"""A replica's puller: fetch each database the updater publishes, verify it, install it locally.

For every database in the catalog, a conditional GET of {DB_PULL_URL}/v1/databases/<name> with
If-None-Match = the sha256 of the local file (and If-Modified-Since from the last answer). On 200
the file lands in a staging file beside the live one, must hash to the sha256 its ETag announced
(damage in transit), then passes update-db's own checks (catalog.CHECKS: type, search tree, sanity
lookups, decodable records) and must not be older than the local file; only then is it installed
with update-db's atomic rename (the replaced file stays as `.previous`), and the workers swap to it
as after any update. Anything else leaves the local file as it was.

Runs under update-db's lock on the live file, so pullers of replicas sharing a volume (and a
`cli.py update-db` run by hand) never interleave. What happened is kept beside the database
(`<db>.pull.json`) for the next conditional GET and for /readyz (status.py).
"""
from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field

from ..config import PullConfig
from ..updater.errors import (ChecksumMismatch, InvalidDatabase, LocalError, LockHeld, NotFoundAtSource, NotNewer,
                              SourceError, UpdateError)
from ..updater.http import HttpClient, Validators
from ..updater.install import install, remove_quietly, remove_stale_staging, staging_file
from ..updater.lock import UpdateLock
from ..updater.state import JsonStateFile, UpdateState
from ..updater.verify import DatabaseFacts, check_replaces, file_sha256
from .catalog import FleetDatabase, fleet_databases

log = logging.getLogger("app.fleet.pull")
EMPTY_RETRY = 5.0   # seconds between tries while a database is missing locally (the replica is not ready)
JITTER = 0.1        # +/- this fraction of the interval, so replicas started together spread out
_SHA256_ETAG = re.compile(r'^(?:W/)?"([0-9a-f]{64})"$')


@dataclass
class PullState(JsonStateFile):
    """What the puller knows about the local file and its last attempt (`<db>.pull.json`)."""

    SUFFIX = ".pull.json"
    sha256: str | None = None
    signature: list = field(default_factory=list)   # [inode, size, mtime_ns] of the file sha256 belongs to
    last_modified: str | None = None                 # the publisher's Last-Modified for that file
    build_epoch: int | None = None
    installed_at: float | None = None
    last_check: float | None = None
    last_outcome: str | None = None                  # updated | current | unpublished | refused | failed
    last_error: str | None = None
    last_error_code: str | None = None
    last_success: float | None = None

    def local_sha256(self, live_path: str) -> str | None:
        """The live file's sha256: remembered while it is the same file, else computed (None: no file)."""
        try:
            signature = UpdateState.signature_of(live_path)
        except FileNotFoundError:
            return None
        if self.sha256 and self.signature == signature:
            return self.sha256
        self.sha256, self.signature, self.last_modified = file_sha256(live_path), signature, None
        return self.sha256


@dataclass
class PullResult:
    database: str
    outcome: str          # updated | current | unpublished | refused | failed | skipped
    message: str
    sha256: str | None = None
    build_epoch: int | None = None
    error: str | None = None  # the UpdateError code of a failure or refusal
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in ("updated", "current", "skipped", "unpublished")


def pull_database(database: FleetDatabase, base_url: str, http: HttpClient, clock=time.time) -> PullResult:
    began = time.monotonic()
    live = database.path
    state = PullState.load(live)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(live)), exist_ok=True)
        with UpdateLock(live):
            result = _pull_locked(database, f"{base_url.rstrip('/')}/v1/databases/{database.name}", http, state)
    except LockHeld as exc:
        result = PullResult(database.name, "skipped", str(exc), error=exc.code)
    except NotFoundAtSource:
        # The updater has none (an optional database not installed there yet): nothing to pull,
        # nothing wrong with this replica; its file, if any, stays.
        result = PullResult(database.name, "unpublished", f"the updater publishes no {database.name} database (yet)",
                            error="NOT_PUBLISHED")
    except (InvalidDatabase, NotNewer) as exc:
        result = PullResult(database.name, "refused", f"{exc}; {live} was left as it was", error=exc.code)
    except UpdateError as exc:
        result = PullResult(database.name, "failed", f"{exc}; {live} was left as it was", error=exc.code)
    except OSError as exc:
        error = LocalError(f"cannot write beside {live}: {exc.strerror or exc}")
        result = PullResult(database.name, "failed", str(error), error=error.code)
    result.seconds = round(time.monotonic() - began, 3)
    if result.outcome != "skipped":  # another puller holding the lock writes its own outcome
        _record(live, state, result, clock())
    return result


def _pull_locked(database: FleetDatabase, url: str, http: HttpClient, state: PullState) -> PullResult:
    live = database.path
    for stale in remove_stale_staging(live):
        log.info("removed %s left by an interrupted pull or update", stale)
    local = state.local_sha256(live)
    validators = Validators(f'"{local}"', state.last_modified) if local else None
    raw = staging_file(live, "pull")
    try:
        got = http.download(url, raw, validators=validators)
        if got.not_modified:
            return PullResult(database.name, "current", f"{live} is the updater's current {database.name} database",
                              sha256=local, build_epoch=state.build_epoch)
        announced = _sha256_of(got.validators.etag)
        if announced is None:
            raise SourceError(f"{url} sent no sha256 ETag: not an Easy GeoIP publish endpoint")
        digest = file_sha256(raw)
        if digest != announced:
            raise ChecksumMismatch(f"the file arrived damaged: its sha256 is {digest}, the updater announced {announced}")
        if digest == local:
            state.last_modified = got.validators.last_modified
            return PullResult(database.name, "current", f"{live} is the updater's current {database.name} database",
                              sha256=local, build_epoch=state.build_epoch)
        facts = database.check(raw)
        check_not_older(facts, database, live)
        install(raw, live)
    finally:
        remove_quietly(raw)  # gone already once installed (renamed)
    state.sha256, state.signature, state.last_modified = digest, UpdateState.signature_of(live), got.validators.last_modified
    state.build_epoch, state.installed_at = facts.build_epoch, time.time()
    built = time.strftime("%Y-%m-%d", time.gmtime(facts.build_epoch))
    return PullResult(database.name, "updated", f"installed {facts.database_type} built {built} from {url} at {live}",
                      sha256=digest, build_epoch=facts.build_epoch)


def check_not_older(facts: DatabaseFacts, database: FleetDatabase, live: str) -> None:
    """update-db's rule: never replace the live file with an older build (a damaged live file may go)."""
    live_facts = None
    if os.path.exists(live):
        try:
            live_facts = database.check(live)
        except InvalidDatabase as exc:
            log.warning("the local %s (%s) is not usable (%s); the pulled file replaces it", database.name, live, exc)
    check_replaces(facts, live_facts, None, force=False)


def _sha256_of(etag: str | None) -> str | None:
    match = _SHA256_ETAG.match(etag.strip()) if etag else None
    return match.group(1) if match else None


def _record(live: str, state: PullState, result: PullResult, now: float) -> None:
    state.last_check, state.last_outcome = now, result.outcome
    if result.ok:
        state.last_success, state.last_error, state.last_error_code = now, None, None
    else:
        state.last_error, state.last_error_code = result.message, result.error
    try:
        state.save(live)
    except OSError as exc:
        log.warning("cannot record the pull of %s: %s", live, exc.strerror or exc)


def pull_once(config: PullConfig) -> list[PullResult]:
    http = HttpClient(timeout=config.http_timeout, max_bytes=config.max_db_bytes)
    try:
        return [pull_database(database, config.url, http) for database in fleet_databases(config.database_paths)]
    finally:
        http.close()


def next_delay(config: PullConfig, rng: random.Random) -> float:
    missing = any(not os.path.exists(path) for _, path in config.database_paths)
    base = min(config.interval, EMPTY_RETRY) if missing else config.interval
    return base * rng.uniform(1 - JITTER, 1 + JITTER)


def run_pull_schedule(config: PullConfig, stop: threading.Event, rng: random.Random | None = None) -> None:
    rng = rng or random.Random()
    names = ", ".join(name for name, _ in config.database_paths)
    log.info("pulling %s from %s every %.0f s", names, config.url, config.interval)
    while not stop.is_set():
        for result in pull_once(config):
            level = logging.INFO if result.ok else logging.WARNING
            if result.outcome != "current":
                log.log(level, "pull %s: %s: %s", result.database, result.outcome, result.message)
        stop.wait(next_delay(config, rng))
