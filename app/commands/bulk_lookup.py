"""`cli.py lookup --file F|-`: the command-line side of app/bulk.py (options, files, exit status).

Exit status: 0 every line was looked up, 1 some line failed (its error object is in the output),
2 bad command line or unreadable input.
"""
from __future__ import annotations

import sys

import click

from app.bulk import FORMATS, BulkOptions, InputError, Progress, input_size, keep_freed_memory, run_bulk
from app.errors import InvalidFields
from app.fields import parse_fields

FILE_OPTIONS = [
    click.option("--file", "input_file", type=click.File("rb"), help="Read targets from this file (- for stdin), one per line."),
    click.option("--column", help="With --file: the CSV column holding the targets: its name in the header line, or its 1-based number (no header line)."),
    click.option("--format", "output_format", type=click.Choice(FORMATS), default="jsonl", show_default=True,
                 help="With --file: JSON Lines, or CSV with one column per field."),
    click.option("--fields", help="Only these paths of each result, e.g. city.name,country.iso_code,location."),
    click.option("--hostname", is_flag=True, help="Add each result's hostname (PTR name, forward-confirmed)."),
    click.option("--output", type=click.File("wb"), help="With --file: write here instead of stdout."),
    click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
                 help="With --file: worker processes (for large inputs)."),
]


def file_options(command):
    for option in reversed(FILE_OPTIONS):
        command = option(command)
    return command


def selection_option(fields: str | None):
    try:
        return parse_fields(fields)
    except InvalidFields as error:
        raise click.BadParameter(error.message, param_hint="--fields") from None


def run_file_lookup(make_lookup, input_file, output, output_format, column, fields, jobs, lang, hostname) -> None:
    options = BulkOptions(format=output_format, column=column, selection=selection_option(fields), lang=lang,
                          jobs=jobs, hostname=hostname)
    out = output or sys.stdout.buffer
    progress = Progress(sys.stderr, input_size(input_file)) if sys.stderr.isatty() else None
    keep_freed_memory()
    try:
        report = run_bulk(make_lookup, input_file, out, options, progress)
    except InputError as error:
        raise click.UsageError(str(error)) from None
    finally:
        out.flush()
    sys.exit(1 if report.failed else 0)
