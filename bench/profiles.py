"""Where the time goes when a target is missed: py-spy on a live uWSGI worker, summarised.

py-spy samples the worker's Python stacks from outside (no code change, `--nonblocking` so the
worker is never paused) and writes collapsed stacks ("frame;frame;frame count"). We keep the
raw file and summarise it: self time per function (the leaf of each sample), self time per code
area (werkzeug, flask, the app's modules, ...) and inclusive time per area (an area is counted
once per sample it appears in; Flask's entry point is in every sample).
"""
from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

PY_SPY = Path(sys.executable).with_name("py-spy")
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy_available() -> bool:
    return PY_SPY.exists() or shutil.which("py-spy") is not None


def record_worker(pid: int, seconds: float, output: Path, rate: int = 250) -> subprocess.Popen:
    """Start recording `pid` for `seconds`; returns the py-spy process (wait on it)."""
    command = [str(PY_SPY if PY_SPY.exists() else "py-spy"), "record", "--pid", str(pid), "--duration",
               str(int(seconds)), "--rate", str(rate), "--format", "raw", "--nonblocking", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def area_of(file_path: str) -> str:
    file_path = "/" + file_path  # py-spy prints paths relative to sys.path entries ("flask/app.py")
    for marker, area in (("/werkzeug/", "werkzeug"), ("/flask/", "flask"), ("/app/http/", "app.http"),
                         ("/app/timezones/", "app.timezones"), ("/app/", "app (lookup, document, citydb, targets)"),
                         ("/timezonefinder/", "timezonefinder"), ("/h3/", "h3"), ("ipaddress.py", "ipaddress"),
                         ("/json/", "json"), ("maxminddb", "maxminddb"), ("/encodings/idna", "idna codec"),
                         ("zoneinfo", "zoneinfo"), ("datetime", "datetime")):
        if marker in file_path:
            return area
    return "other"


def summarise_collapsed(path: Path, limit: int = 12) -> dict:
    self_counts: collections.Counter = collections.Counter()
    area_counts: collections.Counter = collections.Counter()
    self_area_counts: collections.Counter = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_parse(frame) for frame in stack.split(";")]
        frames = [frame for frame in frames if frame is not None]
        if not frames:
            continue
        total += count
        leaf_function, leaf_file = frames[-1]
        self_counts[f"{leaf_function} ({_short(leaf_file)})"] += count
        self_area_counts[area_of(leaf_file)] += count  # C code shows up as its Python caller
        for area in {area_of(file) for _, file in frames}:
            area_counts[area] += count
    share = lambda count: round(count / total, 3) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "self_time": [{"function": name, "share": share(count)} for name, count in self_counts.most_common(limit)],
        "self_by_area": {area: share(count) for area, count in self_area_counts.most_common()},
        "inclusive_by_area": {area: share(count) for area, count in area_counts.most_common()},
    }


def _parse(frame: str):
    match = _FRAME.match(frame.strip())
    if not match:
        return None
    return match.group("function"), match.group("file") or ""


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/work/main/", "/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
