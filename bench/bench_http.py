"""Figure 2: GET /api/v1/lookup/<ip> through Nginx -> uWSGI -> app, against an honest ceiling, with wrk.

Every stack of the figure runs at once (the idle ones cost nothing) and wrk alternates between
them, round after round, so load from elsewhere on a shared machine hits them alike:

| row | what |
|---|---|
| `ceiling` | the plain stack (plain_stack.py): plain Nginx -> uWSGI, 2 processes, no threads, no logging -> a raw WSGI callable returning 900 bytes |
| `ours_trivial` | the same callable through our configs (docker/: supervisord, uwsgi.ini, nginx.conf, site.conf) |
| `ours_trivial_*` | our configs with one choice changed, what each costs (CONFIG_ROWS): |
| `ours_trivial_64_threads` | 64 threads per lookups-pool worker (GEOIP_THREADS; the design before the names pool) |
| `ours_trivial_access_log_off` | no access log (GEOIP_ACCESS_LOG=off) |
| `ours_trivial_rate_limit_zone` | the rate-limit zone on, at 100,000 r/s (never reached) |
| `ours_trivial_no_headers` | no security headers from Nginx: site.conf without `include security-headers.conf` and its `map $upstream_http_*` blocks (an edited copy of docker/, config_edits.py) |
| `ours_trivial_tcp_socket` | both uWSGI pools on TCP loopback instead of our unix sockets (uwsgi.ini, start_nginx.py; edited copy) |
| `ours_trivial_default_buffers` | uWSGI's and Nginx's default buffers: no buffer-size/post-buffering in uwsgi.ini, no uwsgi_buffer_size/uwsgi_buffers in site.conf (edited copy) |
| `app` | Easy GeoIP's lookups, default configuration (rate limit off, as a load test from one address needs) |
| `app_metrics_off` | the same with METRICS_ENABLED=false: the metrics' cost |
| `naive_peer` | Flask + geoip2 `Reader.city(ip).to_dict()` under the plain stack |

Also the throughput curve (app and ceiling at 1..64 connections) for the plot in docs/.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from . import config_edits, profiles, trivial_app, wrk
from .plain_stack import PlainStack
from .stack import ServingStack

TARGET_SHARE = 0.60
TARGET_P99_RATIO = 2.0
TARGET_PEER_RATIO = 4.0
TARGET_METRICS_COST = 0.05
CURVE_CONNECTIONS = (1, 2, 4, 8, 16, 32, 64)

# Our trivial-app stack with one choice changed, label -> how: `env`, our own settings, or
# `config_edits`, a function returning the edits of a copy of docker/ for choices that are no
# setting (bench/config_edits.py; each edit fails if its text is gone, never a silent default).
# - 64_threads: GEOIP_THREADS=64 in the lookups pool (its design before the names pool)
# - access_log_off: GEOIP_ACCESS_LOG=off
# - rate_limit_zone: the limit_req zone on, at a rate the load never reaches
# - no_headers: no security headers from Nginx (no `include security-headers.conf`, no
#   `map $upstream_http_*`)
# - tcp_socket: both uWSGI pools on TCP loopback instead of our unix sockets
# - default_buffers: uWSGI's and Nginx's default buffers instead of uwsgi.ini's buffer-size and
#   post-buffering and site.conf's uwsgi_buffer_size and uwsgi_buffers
CONFIG_ROWS = {
    "ours_trivial_64_threads": {"env": {"GEOIP_THREADS": "64"}},
    "ours_trivial_access_log_off": {"env": {"GEOIP_ACCESS_LOG": "off"}},
    "ours_trivial_rate_limit_zone": {"env": {"GEOIP_RATE_LIMIT": "100000", "GEOIP_RATE_BURST": "1000000"}},
    "ours_trivial_no_headers": {"config_edits": config_edits.no_headers},
    "ours_trivial_tcp_socket": {"config_edits": config_edits.tcp_socket},
    "ours_trivial_default_buffers": {"config_edits": config_edits.default_buffers},
}


def lookup_paths(addresses: list[str]) -> list[str]:
    return [f"/api/v1/lookup/{address}" for address in addresses]


def _stacks(city_file, workers, config_rows: bool) -> dict:
    workers = workers or os.cpu_count() or 1
    stacks = {
        "ceiling": lambda: PlainStack(trivial_app.MODULE, workers=workers),
        "ours_trivial": lambda: ServingStack(city_file.path, ceiling=True, workers=workers),
        "app": lambda: ServingStack(city_file.path, workers=workers),
        "app_metrics_off": lambda: ServingStack(city_file.path, workers=workers, env={"METRICS_ENABLED": "false"}),
        "naive_peer": lambda: PlainStack("bench.naive_peer:application", workers=workers,
                                         env={"BENCH_CITY_DB": str(city_file.path)}),
    }
    if config_rows:
        for label, row in CONFIG_ROWS.items():
            stacks[label] = lambda row=row: config_row_stack(row, city_file.path, workers)
    return stacks


def config_row_stack(row: dict, city_path, workers: int | None = None) -> ServingStack:
    """The trivial-app stack of one CONFIG_ROWS entry (not started)."""
    edits = row.get("config_edits")
    return ServingStack(city_path, ceiling=True, workers=workers, env=row.get("env"),
                        config_edits=None if edits is None else edits())


def measure(city_file, addresses: list[str], *, seconds: float = 10, connections: int = 32, threads: int = 2,
            curve_seconds: float = 3, curve_connections=CURVE_CONNECTIONS, workers: int | None = None,
            profile_to: Path | None = None, rounds: int = 3, config_rows: bool = True) -> dict:
    """Each stack's best round counts for req/s and for p99 (load from elsewhere only adds);
    every round is in the JSON. `profile_to`: py-spy's collapsed stacks of one app worker,
    recorded during an extra wrk run after the measured ones (so profiling never slows the figures)."""
    paths = lookup_paths(addresses)
    results = {}
    with contextlib.ExitStack() as running:
        stacks = {label: running.enter_context(make()) for label, make in _stacks(city_file, workers, config_rows).items()}
        for label, stack in stacks.items():
            # Check the path answers 200 before timing it; the bench must never time error pages.
            status, body = stack.get(paths[0])
            if status != 200:
                raise RuntimeError(f"{label}: {paths[0]} answered {status}")
            trivial = label == "ceiling" or label.startswith("ours_trivial")
            if (body == trivial_app.BODY) != trivial:  # each stack serves the app it should
                raise RuntimeError(f"{label}: the stack serves the wrong WSGI app")
            wrk.run(stack.base_url, paths, connections=connections, seconds=min(2, seconds), threads=threads)  # warm
        runs = {label: [] for label in stacks}
        for _ in range(rounds):
            for label, stack in stacks.items():
                cpu_before = stack.cpu_seconds()
                run = wrk.run(stack.base_url, paths, connections=connections, seconds=seconds, threads=threads)
                run["server_cpu_ms_per_request"] = round((stack.cpu_seconds() - cpu_before) * 1000 / run["requests"], 3)
                run["load_average"] = round(os.getloadavg()[0], 1)
                runs[label].append(run)
        for label, stack in stacks.items():
            best = max(runs[label], key=lambda run: run["requests_per_s"])
            results[label] = {"main": dict(
                best, errors=sum(run["errors"] for run in runs[label]),
                rounds_requests_per_s=[run["requests_per_s"] for run in runs[label]],
                rounds_p99_ms=[run["p99_ms"] for run in runs[label]],
                rounds_load_average=[run["load_average"] for run in runs[label]],
                best_p99_ms=min(run["p99_ms"] for run in runs[label])),
                "workers": stack.workers, "threads": stack.threads, "curve": []}
        for count in curve_connections:  # alternating too
            for label in ("app", "ceiling"):
                results[label]["curve"].append(wrk.run(stacks[label].base_url, paths, connections=count,
                                                       seconds=curve_seconds))
        if profile_to is not None and profiles.py_spy_available():
            results["app"]["profile"] = _profile_worker(stacks["app"], paths, connections, threads, profile_to)
    return summarise(city_file, results, paths, threads, connections, seconds, rounds, curve_connections,
                     curve_seconds)


def summarise(city_file, results, paths, threads, connections, seconds, rounds, curve_connections, curve_seconds):
    main = {label: result["main"] for label, result in results.items()}
    app, ceiling, peer = main["app"], main["ceiling"], main["naive_peer"]
    share = app["requests_per_s"] / ceiling["requests_per_s"]
    p99_ratio = app["best_p99_ms"] / ceiling["best_p99_ms"]
    peer_ratio = app["requests_per_s"] / peer["requests_per_s"]
    metrics_cost = 1 - app["requests_per_s"] / main["app_metrics_off"]["requests_per_s"]
    return {
        "city_file": city_file.label,
        "wrk": {"threads": threads, "connections": connections, "seconds": seconds, "rounds": rounds,
                "rotating_over": len(paths)},
        "app": app,
        "ceiling": ceiling,
        "rows": main,
        "ratio": round(share, 3),
        "target": f">= {TARGET_SHARE:.0%} of the plain ceiling's req/s",
        "met": share >= TARGET_SHARE and app["errors"] == 0,
        # issue 13: the default configuration's tail (no worker recycling by request count)
        "p99_ratio": round(p99_ratio, 2),
        "p99_target": f"<= {TARGET_P99_RATIO:g}x the plain ceiling's p99",
        "p99_met": p99_ratio <= TARGET_P99_RATIO,
        "peer_ratio": round(peer_ratio, 2),
        "peer_target": f">= {TARGET_PEER_RATIO:g}x the naive peer's req/s",
        "peer_met": peer_ratio >= TARGET_PEER_RATIO,
        "metrics_cost": round(metrics_cost, 3),
        "metrics_target": f"<= {TARGET_METRICS_COST:.0%} fewer req/s with metrics on",
        "metrics_met": metrics_cost <= TARGET_METRICS_COST,
        # each config row against our trivial row: what that one choice changes
        "config_cost": {label: round(row["requests_per_s"] / main["ours_trivial"]["requests_per_s"], 3)
                        for label, row in main.items() if label.startswith("ours_trivial_")},
        "ours_trivial_share_of_ceiling": round(main["ours_trivial"]["requests_per_s"] / ceiling["requests_per_s"], 3),
        # CPU per request (all processes of each stack): the same comparison, insensitive to other load.
        "cpu_ratio": round(app["server_cpu_ms_per_request"] / ceiling["server_cpu_ms_per_request"], 2),
        "workers": results["app"]["workers"],
        "worker_profile": results["app"].get("profile"),
        "uwsgi_threads": results["app"]["threads"],
        "curve": {"connections": list(curve_connections),
                  "app_requests_per_s": [point["requests_per_s"] for point in results["app"]["curve"]],
                  "ceiling_requests_per_s": [point["requests_per_s"] for point in results["ceiling"]["curve"]],
                  "app_p99_ms": [point["p99_ms"] for point in results["app"]["curve"]],
                  "ceiling_p99_ms": [point["p99_ms"] for point in results["ceiling"]["curve"]],
                  "seconds_each": curve_seconds},
    }


def _profile_worker(stack, paths, connections: int, threads: int, output: Path, seconds: float = 5) -> dict:
    recorder = profiles.record_worker(stack.worker_pids()[0], seconds, output)
    wrk.run(stack.base_url, paths, connections=connections, seconds=seconds + 1, threads=threads)
    _, errors = recorder.communicate(timeout=60)
    if recorder.returncode != 0 or not output.exists():
        return {"error": errors.decode(errors="replace")[-300:]}
    return {"file": output.name} | profiles.summarise_collapsed(output)
