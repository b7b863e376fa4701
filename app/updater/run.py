"""One update or rollback of one edition's database (editions.py: city or asn), start to finish,
under that database's lock.

fetch (with retries) -> unpack -> verify -> install; any failure removes the temporaries and leaves
the live file as it was. The outcome, and its exit status, is returned, never raised.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field

from ..config import UpdateConfig
from .editions import edition_named
from .errors import ExitCode, InvalidDatabase, LocalError, LockHeld, NothingToRollBack, NotNewer, UpdateError
from .http import HttpClient
from .install import install, previous_path, remove_quietly, remove_stale_staging, rollback, staging_file
from .lock import UpdateLock
from .progress import Progress
from .retry import with_retries
from .sources import AlreadyCurrent, FetchContext, Source, default_source_name, fallback_names, source_named
from .state import UpdateState
from .unpack import unpack
from .verify import DatabaseFacts, check_replaces, read_facts

log = logging.getLogger("app.updater")


@dataclass(frozen=True)
class UpdateOptions:
    source: str | None = None         # None: maxmind with credentials, else dbip (+ fallbacks on an empty volume)
    force: bool = False               # install even when older than the live file
    retry_for: float | None = None    # None: UpdateConfig.retry_for
    if_older_than: float | None = None
    first_retry_wait: float = 2.0
    edition: str = "city"             # which database: editions.py


@dataclass
class UpdateResult:
    outcome: str                      # updated | current | skipped | failed | rolled_back
    exit_code: int
    message: str
    edition: str = "city"
    source: str | None = None
    detail: str | None = None
    fallback: bool = False
    old_build_date: str | None = None
    new_build_date: str | None = None
    md5: str | None = None
    bytes: int | None = None
    seconds: float = 0.0
    error: str | None = None          # stable code of the failure (UpdateError.code)
    failures: list = field(default_factory=list)  # [{"source", "error", "message"}] of sources that failed
    # For the state file only, not the summary:
    validators: dict = field(default_factory=dict, repr=False)
    build_epoch: int | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        summary = asdict(self)
        del summary["validators"], summary["build_epoch"]
        return summary


def run_update(config: UpdateConfig, options: UpdateOptions = UpdateOptions(), progress: Progress | None = None) -> UpdateResult:
    began = time.monotonic()
    live = config.live_path(options.edition)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(live)), exist_ok=True)
        with UpdateLock(live):
            result = _update_locked(config, options, progress)
    except LockHeld as exc:
        result = UpdateResult("failed", exc.exit_code, str(exc), error=exc.code)
    except OSError as exc:
        error = _local_error(exc, live)
        result = UpdateResult("failed", error.exit_code, str(error), error=error.code)
    result.seconds = round(time.monotonic() - began, 3)
    result.edition = options.edition
    return result


def run_rollback(config: UpdateConfig, edition: str = "city") -> UpdateResult:
    live = config.live_path(edition)
    try:
        with UpdateLock(live):
            previous = previous_path(live)
            if not os.path.exists(previous):
                raise NothingToRollBack(f"there is no previous database ({previous}) to roll back to")
            try:
                previous_facts = read_facts(previous, edition=edition)
            except InvalidDatabase as exc:
                raise InvalidDatabase(f"the previous database is not usable ({exc}); not rolling back") from None
            state = UpdateState.load(live)
            live_facts = _live_facts(live, state.known_md5(live), edition)
            rollback(live)
            state = _swap_origins(state)
            state.live_signature = UpdateState.signature_of(live)
            state.save(live)
            return UpdateResult("rolled_back", ExitCode.UPDATED, f"rolled back {live} to the previous database",
                                edition=edition,
                                source=state.source, detail=state.source_detail, md5=previous_facts.md5,
                                old_build_date=_date(live_facts.build_epoch) if live_facts else None,
                                new_build_date=_date(previous_facts.build_epoch))
    except UpdateError as exc:
        return UpdateResult("failed", exc.exit_code, str(exc), edition=edition, error=exc.code)
    except OSError as exc:
        error = _local_error(exc, live)
        return UpdateResult("failed", error.exit_code, str(error), edition=edition, error=error.code)


def _swap_origins(state: UpdateState) -> UpdateState:
    current = state.origin()
    state.set_origin(state.previous or {})
    state.previous = current
    return state


def _update_locked(config: UpdateConfig, options: UpdateOptions, progress: Progress | None) -> UpdateResult:
    live = config.live_path(options.edition)
    for stale in remove_stale_staging(live):
        log.info("removed %s left by an interrupted update", stale)
    state = UpdateState.load(live)
    now = time.time()
    if (options.if_older_than is not None and state.last_success and now - state.last_success < options.if_older_than
            and state.known_md5(live)):
        hours = (now - state.last_success) / 3600
        return UpdateResult("skipped", ExitCode.ALREADY_CURRENT,
                            f"the last successful check was {hours:.1f} h ago, within --if-older-than; nothing to do",
                            source=state.source, detail=state.source_detail, md5=state.md5,
                            old_build_date=_date(state.build_epoch), new_build_date=_date(state.build_epoch))
    live_facts = _live_facts(live, state.known_md5(live), options.edition)

    primary = options.source or default_source_name(config)
    names = [primary] + (fallback_names(primary, options.edition) if options.source is None and live_facts is None
                         else [])
    retry_for = config.retry_for if options.retry_for is None else options.retry_for
    http = HttpClient(timeout=config.http_timeout, max_bytes=config.max_db_bytes)
    failures: list[tuple[str, UpdateError]] = []
    try:
        for index, name in enumerate(names):
            try:
                source = source_named(name, config, options.edition)
                # With no database serving yet, a source that cannot be reached at all gives way to
                # the next one soon: a first start offline must not wait UPDATE_RETRY_FOR per source.
                unreachable_for = (config.first_start_retry_for if live_facts is None and index + 1 < len(names)
                                   else retry_for)
                result = _update_from(source, config, options, state, live_facts, http, progress, retry_for,
                                      unreachable_for)
            except (UpdateError, OSError) as exc:
                failures.append((name, exc if isinstance(exc, UpdateError) else _local_error(exc, live)))
                if index + 1 < len(names):
                    log.warning("%s failed: %s; there is no database yet, trying %s", name, exc, names[index + 1])
                continue
            result.fallback = index > 0
            result.failures = [_failure(n, e) for n, e in failures]
            if result.fallback:
                result.message += f" (fallback: {', '.join(n for n, _ in failures)} failed)"
            _record(state, result, live_facts)
            state.live_signature = UpdateState.signature_of(live) if state.md5 else []
            state.save(live)
            return result
    finally:
        http.close()

    first_name, first_error = failures[0]
    message = "; ".join(f"{n}: {e}" for n, e in failures) + f"; {live} was left as it was"
    state.last_check, state.last_outcome, state.last_error = time.time(), "failed", message
    state.save(live)
    return UpdateResult("failed", first_error.exit_code, message, source=first_name, error=first_error.code,
                        old_build_date=_date(live_facts.build_epoch) if live_facts else None,
                        failures=[_failure(n, e) for n, e in failures])


def _update_from(source: Source, config: UpdateConfig, options: UpdateOptions, state: UpdateState,
                 live_facts: DatabaseFacts | None, http: HttpClient, progress: Progress | None,
                 retry_for: float, unreachable_for: float) -> UpdateResult:
    live = config.live_path(options.edition)
    context = FetchContext(http=http, new_staging_file=lambda purpose: staging_file(live, purpose),
                           progress=progress, live_md5=live_facts.md5 if live_facts else None,
                           live_validators=state.validators if live_facts and state.md5 == live_facts.md5 else {})
    fetched = with_retries(lambda: source.fetch(context), retry_for, options.first_retry_wait,
                           unreachable_for=unreachable_for)
    old_build = _date(live_facts.build_epoch) if live_facts else None
    if isinstance(fetched, AlreadyCurrent):
        return UpdateResult("current", ExitCode.ALREADY_CURRENT, f"{live} is already the latest from {source.name}",
                            source=source.name, detail=fetched.detail, md5=live_facts.md5,
                            old_build_date=old_build, new_build_date=old_build)

    candidate = staging_file(live, "candidate")
    try:
        try:
            unpacked = unpack(fetched.raw_path, candidate, config.max_db_bytes)
        finally:
            if fetched.owned:
                remove_quietly(fetched.raw_path)
        facts = read_facts(candidate, unpacked.md5, options.edition)
        base = dict(source=source.name, detail=fetched.detail, md5=facts.md5, bytes=facts.size,
                    old_build_date=old_build, new_build_date=_date(facts.build_epoch))
        if live_facts and facts.md5 == live_facts.md5:
            return UpdateResult("current", ExitCode.ALREADY_CURRENT, f"{live} is already the latest from {source.name}",
                                validators=fetched.validators, **base)
        try:
            check_replaces(facts, live_facts, fetched.expected_md5, options.force)
        except NotNewer as exc:
            base["new_build_date"] = old_build
            return UpdateResult("current", exc.exit_code, str(exc), **base)
        install(candidate, live)
    finally:
        remove_quietly(candidate)  # gone already once installed (renamed); otherwise it must not stay
    log.info("installed %s: %s from %s (%s), built %s", live, facts.database_type, source.name, fetched.detail,
             _date(facts.build_epoch))
    return UpdateResult("updated", ExitCode.UPDATED,
                        f"installed {facts.database_type} built {_date(facts.build_epoch)} from {source.name} at {live}",
                        validators=fetched.validators, build_epoch=facts.build_epoch, **base)


def _record(state: UpdateState, result: UpdateResult, live_facts: DatabaseFacts | None) -> None:
    now = time.time()
    state.last_check = state.last_success = now
    state.last_outcome, state.last_error = result.outcome, None
    validators = result.validators
    if result.outcome == "updated":
        state.previous = state.origin() if live_facts else {}
        state.set_origin({"source": result.source, "source_detail": result.detail, "fallback": result.fallback,
                          "md5": result.md5, "build_epoch": result.build_epoch, "installed_at": now,
                          "validators": validators or {}})
    elif live_facts is not None:
        if state.md5 != live_facts.md5:  # placed by hand or by an older version: learn what it is
            state.set_origin({"md5": live_facts.md5, "build_epoch": live_facts.build_epoch})
        if validators:
            state.validators = validators


def _live_facts(live: str, known_md5: str | None = None, edition: str = "city") -> DatabaseFacts | None:
    if not os.path.exists(live):
        return None
    try:
        return read_facts(live, known_md5, edition)
    except (InvalidDatabase, OSError) as exc:
        log.warning("the live database %s is not usable (%s); any valid %s database will replace it", live, exc,
                    edition_named(edition).kind)
        return None


def _local_error(exc: OSError, live: str) -> LocalError:
    where = f" ({exc.filename})" if exc.filename else ""
    return LocalError(f"cannot write the database beside {live}: {exc.strerror or exc}{where}")


def _failure(name: str, exc: UpdateError) -> dict:
    return {"source": name, "error": exc.code, "message": str(exc)}


def _date(epoch: int | None) -> str | None:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch)) if epoch else None
