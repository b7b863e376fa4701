"""`cli.py check-overlay FILE...`: validate geofeed overlay files without loading them anywhere.

Exit status: 0 every file is good (one line per file with its entry count), 1 a file was refused
(one line per problem, with the file and line number), 2 bad command line.
"""
from __future__ import annotations

import json
import sys

import click

from app.overlay import GeofeedError, expand_sources, load_files


@click.command("check-overlay")
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_overlay_command(sources, as_json):
    """Validate RFC 8805 geofeed files (or directories of *.csv) as the service would load them."""
    paths = expand_sources(sources)
    if not paths:
        raise click.UsageError("no geofeed file found (a directory is searched for *.csv files)")
    try:
        table, files = load_files(paths)
    except GeofeedError as error:
        problems = [str(problem) for problem in error.problems]
        if as_json:
            click.echo(json.dumps({"valid": False, "problems": problems, "truncated": error.truncated}, indent=2))
        else:
            for line in problems:
                click.echo(line, err=True)
            if error.truncated:
                click.echo(f"(stopped after {len(problems)} problems)", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({"valid": True, "entries": len(table),
                               "files": [{"path": f.path, "entries": f.entries} for f in files]}, indent=2))
    else:
        for loaded in files:
            click.echo(f"{loaded.path}: {loaded.entries} entries, valid")
