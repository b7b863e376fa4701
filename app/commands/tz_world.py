"""`cli.py load-tz-world`: load the packaged time-zone polygons into PostGIS (see docs/tz_world.md).

Exit status: 0 loaded or already current, 1 the load failed (the previous tables are kept),
2 bad command line (click's usage errors).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from app.config import Config, ConfigError
from app.timezones.loader import SUBDIVIDE_MAX_VERTICES, LoadError, grant_reader, load_tz_world


def _default_dsn() -> str | None:
    try:
        return Config.from_env().tz_database_url
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


@click.command("load-tz-world")
@click.option("--dsn", help="PostgreSQL connection string of an owner of the tables. Default: TZ_DATABASE_URL.")
@click.option("--zones", help="Comma-separated tzids to load instead of all (tests, quick checks).")
@click.option("--force", is_flag=True, help="Reload even when the same data release is already loaded.")
@click.option("--subdivide", type=click.IntRange(8, 100_000), default=SUBDIVIDE_MAX_VERTICES, show_default=True,
              help="Most vertices per piece of the lookup table (ST_Subdivide).")
@click.option("--reader-role", help="Also create/update this LOGIN role with SELECT on the tz_world tables only.")
@click.option("--reader-password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the reader role's password (first line).")
@click.option("--json", "as_json", is_flag=True, help="Print the load report as JSON.")
def load_tz_world_command(dsn, zones, force, subdivide, reader_role, reader_password_file, as_json):
    """Load the time-zone polygons into PostGIS (tz_world + subdivided lookup table)."""
    dsn = dsn or _default_dsn()
    if not dsn:
        raise click.UsageError("no database: pass --dsn or set TZ_DATABASE_URL")
    if bool(reader_role) != bool(reader_password_file):
        raise click.UsageError("--reader-role and --reader-password-file go together")
    zone_list = [zone.strip() for zone in zones.split(",") if zone.strip()] if zones else None
    progress = (lambda message: None) if as_json else (lambda message: click.echo(f"... {message}", err=True))
    try:
        report = load_tz_world(dsn, zone_list, force=force, subdivide_max_vertices=subdivide, progress=progress)
        if reader_role:
            lines = reader_password_file.read_text().splitlines()
            grant_reader(dsn, reader_role, lines[0] if lines else "")
    except (LoadError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({**report.__dict__, "reader_role": reader_role}, indent=2))
    else:
        for line in report.lines():
            click.echo(line)
        if reader_role:
            click.echo(f"Reader role {reader_role}: SELECT on tz_world, tz_world_lookup, tz_world_release only.")
