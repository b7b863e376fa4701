"""Small timing helpers shared by the benches: loops timed as a whole, and percentiles."""
from __future__ import annotations

import time
from typing import Callable, Iterable


def per_call_ns(function: Callable, arguments: list, rounds: int = 3) -> dict:
    """Mean nanoseconds per call over `arguments`, best and median of `rounds` full passes.

    The best pass is the figure (other processes on a shared machine only ever add time);
    the median shows how noisy the machine was.
    """
    passes = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for argument in arguments:
            function(argument)
        passes.append((time.perf_counter_ns() - start) / len(arguments))
    passes.sort()
    return {"best_ns": round(passes[0], 1), "median_ns": round(passes[len(passes) // 2], 1), "rounds": rounds}


def latencies_ms(function: Callable, arguments: Iterable) -> list[float]:
    samples = []
    for argument in arguments:
        start = time.perf_counter_ns()
        function(argument)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1) of unsorted samples."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(samples: list[float]) -> dict:
    return {"count": len(samples), "p50_ms": round(percentile(samples, 0.50), 4),
            "p99_ms": round(percentile(samples, 0.99), 4), "mean_ms": round(sum(samples) / len(samples), 4)}
