"""Figure 7: cold start, from process start to the first successful lookup.

  stack       spawn supervisord (docker/supervisord.conf: uWSGI and Nginx), then poll
              GET /api/v1/lookup/<ip> every 5 ms until it answers 200
  ceiling     the same stack serving the trivial app (the servers' own start-up cost)
  process     `python -c` that builds the app (create_app) and looks one address up
  ceiling     `python -c` that opens the City file with maxminddb and reads one record
Each is repeated; the median counts (the page cache is warm after the first: we time start-up
work, not disk reads).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

from .stack import REPO, ServingStack

APP_SNIPPET = """
import sys
from app import create_app
from app.config import Config
app = create_app(Config(city_db_path=sys.argv[1]))
document = app.extensions["geoip"].lookup.lookup(sys.argv[2])
assert document["results"], document
"""
RAW_SNIPPET = """
import sys, maxminddb
reader = maxminddb.open_database(sys.argv[1], maxminddb.MODE_MMAP_EXT)
assert reader.get(sys.argv[2]) is not None
"""


def _process_seconds(snippet: str, city_path: str, address: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", snippet, city_path, address], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _stack_seconds(city_path, address: str, ceiling: bool, workers: int | None) -> float:
    stack = ServingStack(city_path, ceiling=ceiling, ready_path=f"/api/v1/lookup/{address}", workers=workers)
    with stack:
        return stack.ready_after


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def measure(city_file, address: str, repeats: int = 3, workers: int | None = None) -> dict:
    path = str(city_file.path)
    stack_app, stack_ceiling, process_app, process_ceiling = [], [], [], []
    for _ in range(repeats):  # interleaved, so machine load hits both sides alike
        stack_app.append(_stack_seconds(path, address, False, workers))
        stack_ceiling.append(_stack_seconds(path, address, True, workers))
        process_app.append(_process_seconds(APP_SNIPPET, path, address))
        process_ceiling.append(_process_seconds(RAW_SNIPPET, path, address))
    return {
        "city_file": city_file.label,
        "repeats": repeats,
        "stack_s": _median(stack_app),
        "stack_ceiling_s": _median(stack_ceiling),
        "ratio": round(statistics.median(stack_app) / statistics.median(stack_ceiling), 2),
        "process_s": _median(process_app),
        "process_ceiling_s": _median(process_ceiling),
        "process_ratio": round(statistics.median(process_app) / statistics.median(process_ceiling), 2),
        "all_runs_s": {"stack": [round(v, 3) for v in stack_app], "stack_ceiling": [round(v, 3) for v in stack_ceiling],
                       "process": [round(v, 3) for v in process_app],
                       "process_ceiling": [round(v, 3) for v in process_ceiling]},
    }
