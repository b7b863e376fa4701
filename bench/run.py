"""`make bench` / `python -m bench.run`: every figure of issue 7 in one run, with its ceiling.

Writes bench/results/<date>-<host>.json and .md, the throughput plot docs/bench-throughput.png,
and (with --update-readme) the table between the bench markers in README.md.
`--quick` runs the same code on tiny sizes (the smoke test uses it with its own City file).
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import socket
import sys
import time
import traceback
from pathlib import Path

import maxminddb

from . import addresses as address_sets
from . import asn_files, bench_batch, bench_bulk, bench_coldstart, bench_dns, bench_http, bench_inprocess, bench_memory, city_files, report
from .plot import throughput_png

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
PLOT_PATH = REPO / "docs" / "bench-throughput.png"
README = REPO / "README.md"
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
FIGURES = ("inprocess", "http", "batch", "timezones", "dns", "memory", "coldstart", "bulk")

FULL = {"inprocess_addresses": 100_000, "inprocess_rounds": 3, "http_addresses": 10_000, "http_seconds": 10, "http_rounds": 3,
        "curve_seconds": 2, "curve_connections": bench_http.CURVE_CONNECTIONS, "http_config_rows": True, "batch_rounds": 3, "dns_names": 1000,
        "memory_workers": bench_memory.WORKER_COUNTS, "coldstart_repeats": 3, "bulk_lines": 1_000_000}
QUICK = {"inprocess_addresses": 400, "inprocess_rounds": 1, "http_addresses": 200, "http_seconds": 1, "http_rounds": 1,
         "curve_seconds": 0.5, "curve_connections": (1, 4), "http_config_rows": False, "batch_rounds": 1, "dns_names": 20,
         "memory_workers": (1, 2), "coldstart_repeats": 1, "bulk_lines": 2000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness, not the speed")
    parser.add_argument("--city-file", type=Path, help="one City file instead of the real-size ones")
    parser.add_argument("--only", nargs="+", choices=FIGURES, help="measure these figures only")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory")
    parser.add_argument("--plot", type=Path, default=PLOT_PATH, help="throughput plot (PNG)")
    parser.add_argument("--update-readme", action="store_true", help="rewrite the README's bench table")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    wanted = set(args.only or FIGURES)
    started = time.time()
    results = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "sizes": {key: list(value) if isinstance(value, tuple) else value for key, value in sizes.items()},
        "figures": {},
        "skipped": {},
        "failed": {},
    }
    files = [city_files.describe("given", args.city_file)] if args.city_file else city_files.available()
    results["city_files"] = [city.as_dict() for city in files]
    # The real-size figures use the current GeoLite2 when present (about 65 MB, like the
    # production file), else the DB-IP snapshot.
    main_file = next((city for city in files if city.label == "geolite2"), files[0])
    results["main_city_file"] = main_file.label
    args.out.mkdir(parents=True, exist_ok=True)
    stem = (f"{dt.date.today().isoformat()}-{socket.gethostname()}" + ("-quick" if args.quick else "")
            + ("-partial" if args.only else ""))  # a partial run never replaces a full one

    ipv4 = address_sets.public_ipv4(max(sizes["inprocess_addresses"], sizes["http_addresses"]))
    with maxminddb.open_database(str(main_file.path)) as reader:
        located_all = address_sets.located(ipv4, reader)
        located = located_all[: sizes["http_addresses"]]
        located_v6 = address_sets.located_ipv6(sizes["dns_names"], reader)

    def figure(name, function, key=None):
        if name not in wanted:
            return
        key = key or name  # one figure (--only NAME) may give several results (memory, memory_asn)
        print(f"[bench] {key} ...", flush=True)
        begun = time.perf_counter()
        try:
            results["figures"][key] = function()
        except Exception as exc:  # noqa: BLE001 - one broken figure must not lose the others
            results["failed"][key] = f"{type(exc).__name__}: {exc}"[:2000]
            traceback.print_exc()
        print(f"[bench] {key} done in {time.perf_counter() - begun:.0f} s", flush=True)

    def inprocess():
        figures = []
        # Each City file alone, then the main one with the real-size ASN file (against get() on both).
        # --quick checks the harness: no real-size ASN file (on a fresh machine it is a download and a build).
        asn_file = None if args.quick else asn_files.ip_location_db_asn()
        for city, asn in [(city, None) for city in files] + ([(main_file, asn_file)] if asn_file else []):
            item = bench_inprocess.measure(city, ipv4[: sizes["inprocess_addresses"]], rounds=sizes["inprocess_rounds"],
                                           asn_file=asn)
            if not item["met"]:
                profile_path = args.out / f"{stem}-profile-inprocess-{city.label}{'-asn' if asn else ''}.txt"
                item["profile"] = {"file": profile_path.name, "self_time": bench_inprocess.profile(
                    city, ipv4[: min(10_000, sizes["inprocess_addresses"])], profile_path, asn_file=asn)}
            figures.append(item)
        if asn_file is None and not args.quick:
            results["skipped"]["inprocess_asn"] = "no ASN file: npm could not fetch @ip-location-db/asn"
        return figures

    figure("inprocess", inprocess)
    figure("http", lambda: bench_http.measure(
        main_file, located, seconds=sizes["http_seconds"], rounds=sizes["http_rounds"], curve_seconds=sizes["curve_seconds"],
        curve_connections=sizes["curve_connections"], config_rows=sizes["http_config_rows"],
        profile_to=None if args.quick else args.out / f"{stem}-profile-http-worker.txt"))
    figure("batch", lambda: bench_batch.measure(
        main_file, located, rounds=sizes["batch_rounds"],
        profile_to=None if args.quick else args.out / f"{stem}-profile-batch-workers.txt"))
    figure("timezones", lambda: timezones(args.quick))
    figure("dns", lambda: bench_dns.measure(main_file, located, located_v6, count=sizes["dns_names"]))
    figure("memory", lambda: bench_memory.measure(main_file, located, worker_counts=sizes["memory_workers"],
                                                  fill_addresses=located_all))
    if not args.quick and "memory" in wanted:
        asn_file = asn_files.ip_location_db_asn()
        if asn_file is not None:
            figure("memory", lambda: bench_memory.measure(main_file, located, worker_counts=sizes["memory_workers"],
                                                          fill_addresses=located_all, asn_file=asn_file),
                   key="memory_asn")
    figure("coldstart", lambda: bench_coldstart.measure(main_file, located[0], repeats=sizes["coldstart_repeats"]))
    figure("bulk", lambda: bench_bulk.measure(
        main_file, None if args.quick else getattr(asn_files.ip_location_db_asn(), "path", None),
        lines=sizes["bulk_lines"], directory=args.out if args.quick else None))

    if "timezones" in results["figures"] and results["figures"]["timezones"].get("skipped"):
        results["skipped"]["timezones"] = results["figures"].pop("timezones")["skipped"]
    results["machine"]["load_after"] = list(os.getloadavg())
    results["duration_s"] = round(time.time() - started, 1)

    json_path = args.out / f"{stem}.json"
    json_path.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str) + "\n")
    table = report.markdown(results)
    if results["failed"]:
        table += "".join(f"\nFailed: {name}: {reason.splitlines()[0]}\n" for name, reason in results["failed"].items())
    (args.out / f"{stem}.md").write_text(table)
    if "http" in results["figures"]:
        throughput_png(results["figures"]["http"], args.plot, title_note=f"{main_file.label}, {results['started']}")
    if args.update_readme:
        update_readme(table, json_path)
    print(table)
    print(f"[bench] wrote {json_path.relative_to(REPO) if json_path.is_relative_to(REPO) else json_path}")
    return 1 if results["failed"] else 0


def timezones(quick: bool) -> dict:
    """Figure 4 comes from bench/bench_timezones.py (the tz_world work); we only call it."""
    try:
        module = importlib.import_module("bench.bench_timezones")
    except ImportError as exc:
        return {"skipped": f"bench/bench_timezones.py is not available ({exc})"}
    return module.measure(quick=quick)


def machine() -> dict:
    return {"host": socket.gethostname(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load_before": list(os.getloadavg())}


def update_readme(table: str, json_path: Path) -> None:
    text = README.read_text()
    if README_START not in text or README_END not in text:
        print(f"[bench] README.md has no {README_START} ... {README_END} markers; table not copied", file=sys.stderr)
        return
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    block = (f"{README_START}\n{table}\nFull results: `{json_path.relative_to(REPO)}`.\n\n"
             f"![HTTP throughput against concurrency](docs/{PLOT_PATH.name})\n{README_END}")
    README.write_text(head + block + tail)


if __name__ == "__main__":
    sys.exit(main())
