"""Figure 2: GET /api/v1/lookup/<ip> through Nginx -> uWSGI -> app, against the trivial ceiling app
served by the same Nginx and uWSGI configs (see stack.py and trivial_app.py), with wrk.

Also the throughput curve: both stacks at 1..64 connections, for the plot in docs/.
"""
from __future__ import annotations

from pathlib import Path

from . import profiles, trivial_app, wrk
from .stack import ServingStack

TARGET_SHARE = 0.60
TARGET_P99_RATIO = 2.0
CURVE_CONNECTIONS = (1, 2, 4, 8, 16, 32, 64)


def lookup_paths(addresses: list[str]) -> list[str]:
    return [f"/api/v1/lookup/{address}" for address in addresses]


def measure(city_file, addresses: list[str], *, seconds: float = 10, connections: int = 32, threads: int = 2,
            curve_seconds: float = 3, curve_connections=CURVE_CONNECTIONS, workers: int | None = None,
            profile_to: Path | None = None, rounds: int = 3) -> dict:
    """Both stacks run at once (each idle while the other is timed); wrk alternates between them
    for `rounds` rounds of `seconds` each, and each stack's best round counts: a burst of load from
    elsewhere on a shared machine hits both alike and rarely every round.

    `profile_to`: a file for py-spy's collapsed stacks of one app worker, recorded during an
    extra wrk run after the measured ones (so profiling never slows the figures)."""
    paths = lookup_paths(addresses)
    results = {}
    with ServingStack(city_file.path, ceiling=False, workers=workers) as app_stack, \
            ServingStack(city_file.path, ceiling=True, workers=workers) as ceiling_stack:
        stacks = {"app": app_stack, "ceiling": ceiling_stack}
        for label, stack in stacks.items():
            # Check the path answers 200 before timing it; the bench must never time error pages.
            status, body = stack.get(paths[0])
            if status != 200:
                raise RuntimeError(f"{label}: {paths[0]} answered {status}")
            if (body == trivial_app.BODY) != (label == "ceiling"):  # each stack serves the app it should
                raise RuntimeError(f"{label}: the stack serves the wrong WSGI app")
            wrk.run(stack.base_url, paths, connections=connections, seconds=min(2, seconds), threads=threads)  # warm
        runs = {label: [] for label in stacks}
        for _ in range(rounds):
            for label, stack in stacks.items():
                cpu_before = stack.cpu_seconds()
                run = wrk.run(stack.base_url, paths, connections=connections, seconds=seconds, threads=threads)
                run["server_cpu_ms_per_request"] = round((stack.cpu_seconds() - cpu_before) * 1000 / run["requests"], 3)
                runs[label].append(run)
        for label, stack in stacks.items():
            best = max(runs[label], key=lambda run: run["requests_per_s"])
            best = dict(best, errors=sum(run["errors"] for run in runs[label]),
                        rounds_requests_per_s=[run["requests_per_s"] for run in runs[label]],
                        rounds_p99_ms=[run["p99_ms"] for run in runs[label]],
                        # the tail like the throughput: the best round's (load from elsewhere only adds)
                        best_p99_ms=min(run["p99_ms"] for run in runs[label]))
            results[label] = {"main": best, "workers": stack.workers, "threads": stack.threads, "curve": []}
        for count in curve_connections:  # alternating too
            for label, stack in stacks.items():
                results[label]["curve"].append(wrk.run(stack.base_url, paths, connections=count, seconds=curve_seconds))
        if profile_to is not None and profiles.py_spy_available():
            results["app"]["profile"] = _profile_worker(app_stack, paths, connections, threads, profile_to)
    share = results["app"]["main"]["requests_per_s"] / results["ceiling"]["main"]["requests_per_s"]
    p99_ratio = results["app"]["main"]["best_p99_ms"] / results["ceiling"]["main"]["best_p99_ms"]
    return {
        "city_file": city_file.label,
        "wrk": {"threads": threads, "connections": connections, "seconds": seconds, "rounds": rounds,
                "rotating_over": len(paths)},
        "app": results["app"]["main"],
        "ceiling": results["ceiling"]["main"],
        "ratio": round(share, 3),
        "target": f">= {TARGET_SHARE:.0%} of the ceiling's req/s",
        "met": share >= TARGET_SHARE and results["app"]["main"]["errors"] == 0,
        # issue 13: the default configuration's tail (no worker recycling by request count)
        "p99_ratio": round(p99_ratio, 2),
        "p99_target": f"<= {TARGET_P99_RATIO:g}x the ceiling's p99",
        "p99_met": p99_ratio <= TARGET_P99_RATIO,
        # CPU per request (Nginx + uWSGI, both stacks): the same comparison, insensitive to other load.
        "cpu_ratio": round(results["app"]["main"]["server_cpu_ms_per_request"]
                           / results["ceiling"]["main"]["server_cpu_ms_per_request"], 2),
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
