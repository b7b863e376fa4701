"""Figure 3: addresses per second, 1,000 per POST /api/v1/lookup against 1,000 single GETs.

One client on one keep-alive connection through Nginx -> uWSGI -> app, sequential requests, the
same 1,000 addresses both ways, rounds interleaved; the best round of each counts.
"""
from __future__ import annotations

import http.client
import json
import time

from pathlib import Path

from . import profiles
from .stack import ServingStack

TARGET_RATIO = 20.0


class _Client:
    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        return response.status, response.read()

    def close(self):
        self.connection.close()


def singles(client: _Client, addresses: list[str]) -> float:
    start = time.perf_counter()
    for address in addresses:
        status, _ = client.request("GET", f"/api/v1/lookup/{address}")
        if status != 200:
            raise RuntimeError(f"single lookup answered {status}")
    return time.perf_counter() - start


def batch(client: _Client, addresses: list[str]) -> float:
    body = json.dumps({"targets": addresses}).encode()
    start = time.perf_counter()
    status, payload = client.request("POST", "/api/v1/lookup", body)
    elapsed = time.perf_counter() - start
    results = json.loads(payload).get("results") if status == 200 else None
    if results is None or len(results) != len(addresses) or any("error" in item for item in results):
        raise RuntimeError(f"batch answered {status} without one located result per address")
    return elapsed


def measure(city_file, addresses: list[str], rounds: int = 3, workers: int | None = None,
            profile_to: Path | None = None) -> dict:
    """`profile_to`: when the target is missed, py-spy records every worker during extra batches
    (after the measured rounds) into this file."""
    addresses = addresses[:1000]
    with ServingStack(city_file.path, workers=workers) as stack:
        client = _Client(stack.port)
        try:
            singles(client, addresses[:100]), batch(client, addresses)  # warm both paths
            single_times, batch_times, single_cpu, batch_cpu = [], [], [], []
            for _ in range(rounds):
                cpu = stack.cpu_seconds()
                single_times.append(singles(client, addresses))
                single_cpu.append(stack.cpu_seconds() - cpu)
                cpu = stack.cpu_seconds()
                batch_times.append(batch(client, addresses))
                batch_cpu.append(stack.cpu_seconds() - cpu)
            count = len(addresses)
            single_rate = count / min(single_times)
            batch_rate = count / min(batch_times)
            ratio = batch_rate / single_rate
            profile = None
            if ratio < TARGET_RATIO and profile_to is not None and profiles.py_spy_available():
                profile = _profile_batches(stack, client, addresses, profile_to)
        finally:
            client.close()
    return {
        "city_file": city_file.label,
        "addresses_per_request": count,
        "rounds": rounds,
        "single_addresses_per_s": round(single_rate, 1),
        "batch_addresses_per_s": round(batch_rate, 1),
        "single_ms_per_address": round(1000 / single_rate, 3),
        "batch_ms_per_address": round(1000 / batch_rate, 4),
        "single_server_cpu_ms_per_address": round(min(single_cpu) * 1000 / count, 4),
        "batch_server_cpu_ms_per_address": round(min(batch_cpu) * 1000 / count, 4),
        "ratio": round(ratio, 1),
        "target": f">= {TARGET_RATIO:g}x the single GETs' addresses/s",
        "met": ratio >= TARGET_RATIO,
        "worker_profile": profile,
    }


def _profile_batches(stack, client: _Client, addresses: list[str], output: Path, seconds: int = 4) -> dict:
    """py-spy on every worker (we cannot tell which one uWSGI hands the batch to), merged."""
    parts = [output.with_name(f"{output.stem}.{pid}{output.suffix}") for pid in stack.worker_pids()]
    recorders = [profiles.record_worker(pid, seconds, part) for pid, part in zip(stack.worker_pids(), parts)]
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        batch(client, addresses)
    for recorder in recorders:
        recorder.communicate(timeout=60)
    with open(output, "w") as merged:
        for part in parts:
            if part.exists():
                merged.write(part.read_text())
                part.unlink()
    return {"file": output.name} | profiles.summarise_collapsed(output)
