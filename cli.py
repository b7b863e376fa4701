#!/usr/bin/env python3
"""Easy GeoIP on the command line: look things up, check the service's data, keep it fresh."""
from __future__ import annotations

import importlib
import json
import sys

import click

from app.config import Config, ConfigError
from app.commands.bulk_lookup import file_options, run_file_lookup, selection_option
from app.errors import GeoIPError
from app.fields import select_items


def _config() -> Config:
    try:
        return Config.from_env()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _services(config: Config | None = None):
    from app.services import Services
    return Services(config or _config())


# Commands that live in their own modules, imported only when one of them runs (or --help lists
# them): what they need (the updater's HTTP client, PostgreSQL's driver) does not slow the others.
LAZY_COMMANDS = {
    "update-db": "app.commands.update_db:update_db",
    "load-tz-world": "app.commands.tz_world:load_tz_world_command",
    "check-overlay": "app.commands.check_overlay:check_overlay_command",
    "pull-db": "app.commands.pull_db:pull_db",
}


class LazyGroup(click.Group):
    """click's documented pattern for lazily loaded subcommands."""

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx, name):
        if name not in LAZY_COMMANDS:
            return super().get_command(ctx, name)
        module, _, attribute = LAZY_COMMANDS[name].partition(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Easy GeoIP: where is this IP address or domain?"""


@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the result documents as JSON.")
@click.option("--lang", default="en", show_default=True, help="Language of place names.")
@file_options
def lookup(targets, as_json, lang, input_file, column, output_format, fields, hostname, output, jobs):
    """Look up IP addresses and domain names (or every line of --file). Exit status 1 when any target fails."""
    from app.document import preferred_language
    lang = preferred_language(lang)
    if input_file is not None:
        if targets:
            raise click.UsageError("give targets or --file, not both")
        config = _config()
        return run_file_lookup(lambda: _services(config).lookup, input_file, output, output_format, column, fields,
                               jobs, lang, hostname)
    if not targets:
        raise click.UsageError("give one or more targets, or --file")
    selection = selection_option(fields)
    if selection is not None and not as_json:
        raise click.UsageError("--fields selects what --json or --file writes; the table has its own columns")
    services = _services()
    failed = False
    documents = []
    for target in targets:
        try:
            documents.append(services.lookup.lookup(target, lang, hostname=hostname))
        except GeoIPError as error:
            failed = True
            documents.append({"query": target.strip(), "error": error.to_dict()})
    documents = select_items(documents, selection)
    if as_json:
        click.echo(json.dumps(documents if len(documents) > 1 else documents[0], ensure_ascii=False, indent=2))
    else:
        click.echo(format_table(documents))
    sys.exit(1 if failed else 0)


def hostname_text(hostname: dict | None) -> str:
    if not hostname:
        return ""
    if hostname["name"] is None:
        return f"({hostname['error']['code']})" if hostname.get("error") else ""
    return hostname["name"] + ("" if hostname["verified"] else " (unverified)")


def format_table(documents: list[dict]) -> str:
    from app.http.page import owner_text
    headers = ("QUERY", "IP", "CITY", "REGION", "COUNTRY", "LAT,LON", "TIME ZONE", "LOCAL TIME", "NETWORK OWNER")
    with_hostname = any("hostname" in result for doc in documents for result in doc.get("results", ()))
    if with_hostname:
        headers += ("HOSTNAME",)
    blank = ("",) * (len(headers) - 3)
    rows = []
    for doc in documents:
        if "error" in doc:
            rows.append((doc["query"], "-", f"error: {doc['error']['code']}", *blank))
            continue
        for result in doc["results"]:
            if "error" in result:
                rows.append((doc["query"], result["ip"], f"error: {result['error']['code']}", *blank))
                continue
            location, tz = result["location"], result["timezone"]
            coordinates = "" if location["latitude"] is None else f"{location['latitude']:.4f},{location['longitude']:.4f}"
            zone = tz["name"] or ("unavailable" if tz["degraded"] else "")
            if tz["source"]:
                zone += f" ({tz['source']})"
            rows.append((
                doc["query"], result["ip"], result["city"]["name"] or "",
                ", ".join(s["name"] or s["iso_code"] or "" for s in result["subdivisions"]),
                result["country"]["name"] or result["country"]["iso_code"] or "",
                coordinates, zone, (tz["local_time"] or "")[:19].replace("T", " "),
                owner_text(result.get("asn")) or "",
                *((hostname_text(result.get("hostname")),) if with_hostname else ()),
            ))
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in [headers, *rows])


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(as_json):
    """Every database (kind, path, type, build date, age, stale, source, updates) and the time-zone
    backend. Exit 1 when not ready."""
    report = _services().readiness()
    from app.updater.status import describe_live_database, status_lines
    for database in report["databases"]:
        if database["configured"]:
            database["updates"] = describe_live_database(database["path"])
    report["updates"] = report["database"]["updates"]
    if as_json:
        click.echo(json.dumps(report, indent=2))
        sys.exit(0 if report["status"] != "unavailable" else 1)
    click.echo(f"status:       {report['status']}")
    for db in report["databases"]:
        kind = db["kind"]
        if not db["configured"]:
            click.echo(f"{kind + ' database:':14} not configured ({db['detail']})")
            continue
        click.echo(f"{kind + ' database:':14} {db['path']}")
        if db["loaded"]:
            click.echo(f"  type:       {db['type']} (source: {db['source']}), ip version {db['ip_version']}")
            stale = f", stale: run `cli.py update-db --edition {kind}`" if db["stale"] else ""
            click.echo(f"  build date: {db['build_date']} ({db['age_days']} days old{stale})")
            reader = "mmdb_records (C)" if db["reader"]["native"] else "the maxminddb extension (slower)"
            click.echo(f"  reader:     {reader}")
        for problem in db["problems"]:
            click.echo(f"  problem:    {problem}")
        for line in status_lines(db["path"]):
            click.echo(f"  updates:    {line}")
    tz = report["timezone"]
    click.echo(f"time zones:   {tz.get('backend')} ({tz.get('state')})"
               + (f": {tz['detail']}" if tz.get("detail") else ""))
    for file in report["overlay"]["files"]:
        click.echo(f"overlay:      {file['path']}: {file['entries']} entries"
                   + (f", loaded {file['loaded_at']}" if file["loaded_at"] else ""))
        for problem in file["problems"]:
            click.echo(f"  problem:    {problem}")
    sys.exit(0 if report["status"] != "unavailable" else 1)




if __name__ == "__main__":
    cli()
