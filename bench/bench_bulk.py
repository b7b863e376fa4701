"""Bulk enrichment: `cli.py lookup --file F --jobs 2` over a file of public IPv4 addresses, one
per line (1,000,000 in the full run), against a bare loop over the same lines in the same run.

Ours: the real command as a user runs it (a subprocess, start to exit, output to /dev/null, the
JSON Lines documents built and serialised), with the City database and, when the bench has one,
the ASN database. Ceiling: one process reading the same file and calling maxminddb's `get()` on
each line for each of the same databases, nothing else (no document, no output). Target:
200,000 addresses/s with --jobs 2 on this 2-core machine.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from . import addresses as address_sets
from .city_files import cache_dir

REPO = Path(__file__).resolve().parent.parent
TARGET_PER_S = 200_000

_BARE_LOOP = """
import sys, time, maxminddb
readers = [maxminddb.open_database(path, maxminddb.MODE_MMAP_EXT) for path in sys.argv[2:]]
started = time.perf_counter()
count = 0
with open(sys.argv[1], "rb") as lines:
    for line in lines:
        address = line.strip().decode()
        for reader in readers:
            reader.get(address)
        count += 1
print(count, time.perf_counter() - started)
"""


def input_file(count: int, directory: Path | None = None) -> Path:
    path = (directory or cache_dir()) / f"bulk-ipv4-{count}.txt"
    if not path.exists():
        temporary = path.with_suffix(".tmp")
        temporary.write_text("\n".join(address_sets.public_ipv4(count)) + "\n")
        os.replace(temporary, path)
    return path


def _environment(city_path: Path, asn_path: Path | None) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GEOIP_", "TZ_", "DNS_"))}
    env["GEOIP_CITY_DB"] = str(city_path)
    if asn_path is not None:
        env["GEOIP_ASN_DB"] = str(asn_path)
    return env


def run_bulk_command(source: Path, city_path: Path, asn_path: Path | None, jobs: int) -> float:
    """Seconds from start to exit of the real command."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "cli.py", "lookup", "--file", str(source), "--jobs", str(jobs),
                           "--output", os.devnull], cwd=REPO, env=_environment(city_path, asn_path),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=3600)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: some lines failed (unlocated addresses), as expected
        raise RuntimeError(f"cli.py lookup --file exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def run_bare_loop(source: Path, paths: list[Path]) -> tuple[int, float]:
    done = subprocess.run([sys.executable, "-c", _BARE_LOOP, str(source), *map(str, paths)], cwd=REPO,
                          capture_output=True, text=True, check=True, timeout=3600)
    count, seconds = done.stdout.split()
    return int(count), float(seconds)


def measure(city_file, asn_path: Path | None = None, lines: int = 1_000_000, jobs: int = 2, rounds: int = 1,
            directory: Path | None = None) -> dict:
    source = input_file(lines, directory)
    databases = [city_file.path] + ([asn_path] if asn_path is not None else [])
    bulk_s = min(run_bulk_command(source, city_file.path, asn_path, jobs) for _ in range(rounds))
    bare_s = min(run_bare_loop(source, databases)[1] for _ in range(rounds))
    single_s = run_bulk_command(source, city_file.path, asn_path, 1) if jobs > 1 else bulk_s
    bulk_rate, bare_rate, single_rate = lines / bulk_s, lines / bare_s, lines / single_s
    figure = {
        "city_file": city_file.label,
        "asn_file": asn_path.name if asn_path is not None else None,
        "lines": lines,
        "jobs": jobs,
        "bulk_s": round(bulk_s, 2),
        "bulk_addresses_per_s": round(bulk_rate),
        "bulk_jobs1_addresses_per_s": round(single_rate),
        "bare_get_addresses_per_s": round(bare_rate),
        "ratio": round(bulk_rate / bare_rate, 2),
        "target_addresses_per_s": TARGET_PER_S,
        "met": bulk_rate >= TARGET_PER_S,
        "load_average": os.getloadavg()[0],
    }
    databases_text = city_file.label + (" + ASN" if asn_path is not None else "")
    figure["table_rows"] = [(
        f"8. Bulk: cli.py lookup --file, {lines:,} IPv4 lines, --jobs {jobs} ({databases_text}, JSON Lines)",
        f"{bulk_rate:,.0f} addresses/s ({single_rate:,.0f} with --jobs 1)",
        f"{bare_rate:,.0f} addresses/s (bare maxminddb get() loop, 1 process)",
        f"{figure['ratio']:.2f}x", f"≥ {TARGET_PER_S:,}/s", "yes" if figure["met"] else "**no**")]
    return figure
