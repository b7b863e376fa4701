"""Drive wrk against a local stack, rotating over a list of lookup paths; results as a dict.

A Lua script holds the paths (each wrk thread walks them from its own offset) and, when wrk
finishes, prints the summary as one JSON line, so nothing depends on wrk's human output.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

SCRIPT = """
local paths = {%(paths)s}
local count = #paths
local threads = 0
local index = 0

function setup(thread)
  thread:set("start", threads * 7919)
  threads = threads + 1
end

function init(args)
  index = start or 0
end

function request()
  index = index %% count + 1
  return wrk.format("GET", paths[index])
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests":%%d,"duration_us":%%d,"bytes":%%d,"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def run(base_url: str, paths: list[str], *, connections: int, seconds: float, threads: int | None = None) -> dict:
    threads = threads or min(2, connections)
    seconds = max(1, round(seconds))  # wrk takes whole seconds
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(SCRIPT % {"paths": ",".join(json.dumps(path) for path in paths)})
    try:
        done = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                               "--timeout", "10s", "-s", script.name, base_url],
                              capture_output=True, text=True, timeout=seconds + 60)
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next((line for line in reversed(done.stdout.splitlines()) if line.startswith("{")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[:500]}")
    raw = json.loads(line)
    seconds_run = raw["duration_us"] / 1e6
    errors = sum(raw["errors"].values())
    return {
        "connections": connections,
        "threads": threads,
        "seconds": round(seconds_run, 2),
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / seconds_run, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "error_detail": raw["errors"],
    }
