"""`cli.py update-db`: fetch, verify and atomically install a new database (`--edition city`, the
default, or `asn`), or roll back.

Exit status (also in docs/updates.md): 0 updated (or rolled back), 1 failed, 2 bad command line,
3 already current / skipped, 4 another update is running, 5 quota reached (HTTP 429),
6 credentials refused (HTTP 401/403). The live file is never touched on failure.
"""
from __future__ import annotations

import json
import logging
import signal
import sys
import threading

import click

from app.config import ConfigError, UpdateConfig, parse_duration
from app.updater.editions import NAMES as EDITION_NAMES
from app.updater.progress import progress_for
from app.updater.run import UpdateOptions, run_rollback, run_update
from app.updater.schedule import run_schedule


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return parse_duration(value)
        except ValueError:
            self.fail(f"{value!r} is not a duration such as 90s, 30m, 24h or 7d", param, ctx)


@click.command("update-db")
@click.option("--source", metavar="SOURCE",
              help="maxmind, dbip, snapshot, an http(s) URL, or a path to .mmdb/.mmdb.gz/.tar.gz. "
                   "Default: maxmind with credentials, else dbip (falling back to snapshot when there is no database).")
@click.option("--force", is_flag=True, help="Install even if the new database is older than the live one.")
@click.option("--retry-for", type=Duration(), default=None, help="Retry network errors, 5xx and 408 this long (default 5m).")
@click.option("--if-older-than", type=Duration(), default=None, help="Do nothing if the last successful check is more recent.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("--rollback", is_flag=True, help="Swap back to the database the last update replaced.")
@click.option("--schedule", is_flag=True, help="Run forever: fill an empty volume, then check every UPDATE_INTERVAL "
                                             "(and publish the verified files on PUBLISH_LISTEN for the fleet's pullers).")
@click.option("--edition", type=click.Choice(EDITION_NAMES), default=None,
              help="Which database: city (GEOIP_CITY_DB, the default) or asn (GEOIP_ASN_DB). "
                   "--schedule keeps every configured one.")
@click.option("--quiet", is_flag=True, help="Log warnings and errors only.")
def update_db(source, force, retry_for, if_older_than, as_json, rollback, schedule, edition, quiet):
    """Update a database safely (see docs/updates.md)."""
    _setup_logging(quiet)
    try:
        config = UpdateConfig.from_env()
        config.live_path(edition or "city")
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    other_options = source or force or retry_for is not None or if_older_than is not None
    if (rollback or schedule) and (other_options or (rollback and schedule)):
        raise click.UsageError("--rollback and --schedule take no other update options")
    if schedule:
        if edition:
            raise click.UsageError("--schedule keeps every configured database: it takes no --edition")
        _run_schedule(config)
        return
    edition = edition or "city"
    if rollback:
        result = run_rollback(config, edition)
    else:
        options = UpdateOptions(source=source, force=force, retry_for=retry_for, if_older_than=if_older_than,
                                edition=edition)
        with _terminate_cleanly():
            result = run_update(config, options, progress=None if quiet else progress_for(sys.stderr))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    elif result.outcome == "failed":
        click.echo(f"update-db failed: {result.message}", err=True)
    else:
        click.echo(result.message)
    sys.exit(result.exit_code)


def _run_schedule(config: UpdateConfig) -> None:
    stop = threading.Event()

    def on_signal(signum, frame):
        # Unwind at once, even mid-download: temporaries are removed on the way out, the lock dies with us.
        stop.set()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if config.publish_listen is None:
        run_schedule(config, stop)
        return
    from app.fleet.catalog import fleet_databases
    from app.fleet.publish import PublishServer

    with PublishServer(fleet_databases(config.database_paths), config.publish_listen):
        run_schedule(config, stop)


class _terminate_cleanly:
    """SIGTERM during an update unwinds like Ctrl-C, so temporaries are removed and the lock released."""

    def __enter__(self):
        self.previous = signal.signal(signal.SIGTERM, self._raise)

    def __exit__(self, *exc):
        signal.signal(signal.SIGTERM, self.previous)

    @staticmethod
    def _raise(signum, frame):
        raise SystemExit(128 + signum)


def _setup_logging(quiet: bool) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("app.updater").setLevel(logging.WARNING if quiet else logging.INFO)
