"""City DB updates: how fast a swap reaches every worker, what it costs requests, and what the
checks cost over a plain copy. All figures are measured in one run, on this machine.

1. Swap latency, through the real stack (Nginx -> uWSGI, 2 workers, the default 0.5 s check
   interval): from `run_update` returning (the rename is done) to 20 answers in a row, across the
   workers, naming the new version. Target: the slowest of 10 swaps under 1 s.
2. Requests during swaps: 4 clients keep asking while 10 swaps happen, then for as long again
   without swaps. Failed requests must be 0; p99 latency during swaps over p99 without (ratio)
   must stay under 2.
3. The update pipeline on a real-size file (DB-IP City Lite, ~100 MB): `update-db --source
   FILE` (copy + md5 + open + probes + walk + fsync + rename) over the least any safe updater does,
   a copy + md5 + fsync of the same file (what geoipupdate does). Target ratio: under 1.5, i.e. the
   checks and the atomic install add less than half again. Best of 5 each (a shared machine only
   ever adds time).

    .venv/bin/python -m bench.bench_update

Writes bench/results/update-<UTC date-time>.json and .md; `measure()` is what bench/run.py can call.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import requests

from app.config import UpdateConfig
from app.updater.run import UpdateOptions, run_update
from tests.support.fake_update_servers import build_city_db
from tests.support.native_stack import NativeStack

from .city_files import dbip_lite
from .timing import percentile

TARGET_SWAP_SECONDS = 1.0
TARGET_P99_RATIO = 2.0
TARGET_PIPELINE_RATIO = 1.5
SWAPS = 10
CLIENTS = 4
ADDRESS = "81.2.69.160"


class _Clients:
    def __init__(self, url: str):
        self.url = url
        self.samples: list[tuple[float, float, object]] = []  # (start, seconds, version or error)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CLIENTS)]

    def _run(self):
        session = requests.Session()
        while not self.stop.is_set():
            start = time.perf_counter()
            try:
                response = session.get(f"{self.url}/api/v1/lookup/{ADDRESS}", timeout=10)
                city = response.json()["results"][0]["city"]["name"] if response.status_code == 200 else None
                outcome = int(city.rsplit("v", 1)[1]) if city else f"HTTP {response.status_code}"
            except Exception as exc:  # counted as a failure
                outcome = repr(exc)
            with self.lock:
                self.samples.append((start, time.perf_counter() - start, outcome))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def serving(self, version: int, since: float, run: int = 20) -> float | None:
        """When the last of `run` consecutive answers (started after `since`) named `version`."""
        with self.lock:
            recent = [sample for sample in self.samples if sample[0] >= since]
        streak = 0
        for start, seconds, outcome in recent:
            streak = streak + 1 if outcome == version else 0
            if streak >= run:
                return start + seconds
        return None


def swap_figures(work: Path) -> dict:
    live = build_city_db(work / "v1.mmdb", 1)
    # Built beforehand: during the swaps this process should only do what an updater does.
    candidates = {version: build_city_db(work / f"v{version}.mmdb", version) for version in range(2, SWAPS + 2)}
    with NativeStack(live, env={"GEOIP_RATE_LIMIT": "0"}, workers=2, threads=4) as stack, _Clients(stack.url) as clients:
        deadline = time.monotonic() + 30
        while clients.serving(1, 0) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        swap_start = time.perf_counter()
        latencies = []
        for version in range(2, SWAPS + 2):
            result = run_update(UpdateConfig(city_db_path=str(stack.city_db)),
                                UpdateOptions(source=str(candidates[version])))
            assert result.outcome == "updated", result.message
            renamed = time.perf_counter()
            while (switched := clients.serving(version, renamed)) is None and time.perf_counter() - renamed < 10:
                time.sleep(0.01)
            latencies.append(round((switched or float("inf")) - renamed, 3))
        swap_end = time.perf_counter()
        time.sleep(swap_end - swap_start)  # as long again without swaps
        steady_end = time.perf_counter()
    during = [s for s in clients.samples if swap_start <= s[0] < swap_end]
    steady = [s for s in clients.samples if swap_end <= s[0] < steady_end]
    failures = [s for s in clients.samples if s[0] >= swap_start and not isinstance(s[2], int)]
    p99_during = percentile([s[1] * 1000 for s in during], 0.99)
    p99_steady = percentile([s[1] * 1000 for s in steady], 0.99)
    return {
        "swap_latency_s": {"max": max(latencies), "median": sorted(latencies)[len(latencies) // 2],
                           "each": latencies, "target_max": TARGET_SWAP_SECONDS,
                           "met": max(latencies) < TARGET_SWAP_SECONDS},
        "requests_during_swaps": {"count": len(during), "failed": len(failures),
                                  "p99_ms_during": round(p99_during, 2), "p99_ms_steady": round(p99_steady, 2),
                                  "p99_ratio": round(p99_during / p99_steady, 2), "target_ratio": TARGET_P99_RATIO,
                                  "met": not failures and p99_during / p99_steady < TARGET_P99_RATIO},
    }


def _copy_md5_fsync(source: Path, target: Path) -> float:
    start = time.perf_counter()
    shutil.copyfile(source, target)
    digest = hashlib.md5(usedforsecurity=False)
    with open(target, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
        os.fsync(handle.fileno())
    seconds = time.perf_counter() - start
    target.unlink()
    return seconds


def _update_once(source: Path, work: Path, round_number: int) -> float:
    live = work / f"data{round_number}" / "city.mmdb"
    live.parent.mkdir()
    result = run_update(UpdateConfig(city_db_path=str(live)), UpdateOptions(source=str(source)))
    assert result.outcome == "updated", result.message
    shutil.rmtree(live.parent)
    return result.seconds


def pipeline_figures(work: Path, rounds: int = 5) -> dict:
    city = dbip_lite()
    baseline, update = [], []
    for round_number in range(rounds):
        baseline.append(_copy_md5_fsync(city.path, work / "copy.mmdb"))
        update.append(_update_once(city.path, work, round_number))
    ratio = min(update) / min(baseline)
    return {"file": city.as_dict(), "copy_md5_fsync_s": round(min(baseline), 3), "update_s": round(min(update), 3),
            "ratio": round(ratio, 2), "target_ratio": TARGET_PIPELINE_RATIO, "met": ratio < TARGET_PIPELINE_RATIO}


def measure() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-update-") as directory:
        work = Path(directory)
        (work / "swaps").mkdir()
        (work / "pipeline").mkdir()
        figures = swap_figures(work / "swaps")
        figures["pipeline"] = pipeline_figures(work / "pipeline")
    return figures


def table_rows(figures: dict) -> list[tuple[str, str, str, str]]:
    swap, load, pipeline = figures["swap_latency_s"], figures["requests_during_swaps"], figures["pipeline"]
    return [
        ("rename to every worker serving it (10 swaps, max)", f"{swap['max']:.3f} s (median {swap['median']:.3f})",
         f"< {swap['target_max']:g} s", "yes" if swap["met"] else "NO"),
        ("failed requests during 10 swaps", f"{load['failed']} of {load['count']}", "0",
         "yes" if load["failed"] == 0 else "NO"),
        ("p99 during swaps / p99 steady", f"{load['p99_ratio']} ({load['p99_ms_during']} / {load['p99_ms_steady']} ms)",
         f"< {load['target_ratio']:g}", "yes" if load["met"] else "NO"),
        (f"update-db of a {pipeline['file']['size_mb']} MB file / copy+md5+fsync",
         f"{pipeline['ratio']} ({pipeline['update_s']} / {pipeline['copy_md5_fsync_s']} s)",
         f"< {pipeline['target_ratio']:g}", "yes" if pipeline["met"] else "NO"),
    ]


def write_results(figures: dict) -> Path:
    results_dir = Path(__file__).resolve().parent / "results"
    results_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime())
    target = results_dir / f"update-{stamp}.json"
    target.write_text(json.dumps(figures, indent=2) + "\n")
    lines = ["| figure | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in table_rows(figures)]
    target.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return target


if __name__ == "__main__":
    results = measure()
    print(json.dumps(results, indent=2))
    print(f"written to {write_results(results)}")
