"""Figures the reliability tests measure, for docs/reliability.md.

Each test calls `record(name, **figures)`: the figures are printed (visible with `pytest -s` or in
the captured output of a failure) and, when RELIABILITY_FIGURES names a file, appended to it as
one JSON line, which is how the report's tables are filled:

    RELIABILITY_FIGURES=/tmp/figures.jsonl .venv/bin/python -m pytest tests/test_reliability_*.py
"""
from __future__ import annotations

import json
import os
import time


def record(name: str, **figures) -> dict:
    entry = {"test": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    line = json.dumps(entry, sort_keys=False, default=str)
    print(f"\nFIGURES {line}")
    path = os.environ.get("RELIABILITY_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    return entry
