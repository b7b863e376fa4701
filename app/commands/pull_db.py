"""`cli.py pull-db`: fetch the databases the fleet's updater publishes (DB_PULL_URL), verify, install.

Once by default (exit 0 when every database is current or was updated, 1 otherwise, 2 bad
settings); `--schedule` runs forever as the app image's `puller` supervisord program, and exits 0
at once when DB_PULL_URL is not set (the databases are then whatever is at their paths: the
compose updater shares its volume, or a file is placed by hand).
"""
from __future__ import annotations

import json
import logging
import signal
import sys
import threading

import click

from app.config import ConfigError, PullConfig
from app.fleet.pull import pull_once, run_pull_schedule


@click.command("pull-db")
@click.option("--schedule", is_flag=True, help="Run forever: pull every DB_PULL_INTERVAL (the app image's puller).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def pull_db(schedule, as_json):
    """Pull the databases the fleet's updater publishes (see docs/scaling.md)."""
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("app").setLevel(logging.INFO)
    try:
        config = PullConfig.from_env()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if config is None:
        if schedule:
            click.echo("pull-db: DB_PULL_URL is not set; this replica uses the databases at their paths", err=True)
            sys.exit(0)
        raise click.UsageError("DB_PULL_URL is not set: it names the updater's publish endpoint, e.g. http://updater:8081")
    if schedule:
        stop = threading.Event()

        def on_signal(signum, frame):
            stop.set()
            raise SystemExit(0)  # unwind now, even mid-transfer: temporaries go, the lock dies with us

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        run_pull_schedule(config, stop)
        return
    results = pull_once(config)
    if as_json:
        click.echo(json.dumps([result.__dict__ for result in results], indent=2, sort_keys=True))
    else:
        for result in results:
            click.echo(f"{result.database}: {result.outcome}: {result.message}")
    sys.exit(0 if all(result.ok for result in results) else 1)
