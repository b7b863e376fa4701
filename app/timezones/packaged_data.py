"""The time-zone boundaries shipped in the `timezonefinder-data` package, read for PostGIS.

timezone-boundary-builder polygons (with oceans, full resolution) as the package stores them:
per boundary polygon an int32 ring scaled by 10^7 plus its holes. We turn each zone into one
EWKB MultiPolygon (SRID 4326) with numpy, because timezonefinder's `get_geometry()` builds
Python lists and takes ~45 s for all zones, against ~2 s here.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import timezonefinder_data

if TYPE_CHECKING:
    import numpy as np

ATTRIBUTION = (
    "Time-zone boundaries: timezone-boundary-builder (github.com/evansiroky/timezone-boundary-builder), "
    "built from OpenStreetMap data, (c) OpenStreetMap contributors, ODbL 1.0; "
    "packaged by timezonefinder-data."
)

_SCALE = 10**7  # timezonefinder stores degrees * 10^7 as int32
_EWKB_SRID_FLAG = 0x20000000
_WKB_POLYGON = 3
_WKB_MULTIPOLYGON = 6
# timezonefinder.configs.DATA_VERSION_FILENAME: importing that module imports numpy (0.15 s and
# megabytes in every process that opens the index, and most never look a point up: GeoLite2's
# records carry their zone). tests/test_timezones_embedded.py checks that the two agree.
DATA_VERSION_FILENAME = "data_version.txt"


@dataclass(frozen=True)
class DataRelease:
    release: str          # timezone-boundary-builder release, e.g. "2026c"
    package_version: str  # timezonefinder-data version, e.g. "3.2026.3.post1"
    finder_version: str   # timezonefinder version

    def label(self) -> str:
        return f"{self.release} (timezonefinder-data {self.package_version})"


@dataclass(frozen=True)
class ZoneGeometry:
    tzid: str
    ewkb: bytes
    polygons: int
    vertices: int


def _version_of(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def packaged_release(finder=None, data_dir=None) -> DataRelease:
    """The boundary release the installed packages hold (data_version.txt, e.g. "2026c").

    Read from the stamp file itself unless a finder is at hand: building one just to ask would
    load megabytes of arrays that stay allocated. Raises FileNotFoundError when the data
    directory does not exist (a broken install shows at start, not at the first lookup)."""
    if finder is not None:
        try:
            release = finder.data_version
        except FileNotFoundError:
            release = _version_of("timezonefinder-data")
    else:
        directory = Path(data_dir or timezonefinder_data.DATA_DIR)
        if not directory.is_dir():
            raise FileNotFoundError(f"no time-zone data directory at {directory}")
        stamp = directory / DATA_VERSION_FILENAME
        release = stamp.read_text(encoding="utf-8").strip() if stamp.exists() else _version_of("timezonefinder-data")
    return DataRelease(release, _version_of("timezonefinder-data"), _version_of("timezonefinder"))


def zone_names() -> list[str]:
    from timezonefinder import TimezoneFinderL

    return list(TimezoneFinderL().timezone_names)


def _ring(coords: np.ndarray) -> bytes:
    import numpy as np

    points = np.ascontiguousarray(coords.T, dtype=np.float64) / _SCALE
    if not np.array_equal(points[0], points[-1]):  # WKB rings are closed; the package's are not
        points = np.vstack([points, points[:1]])
    return struct.pack("<I", len(points)) + points.astype("<f8").tobytes()


def iter_zone_geometries(zones: Iterable[str] | None = None) -> Iterator[ZoneGeometry]:
    """One EWKB MultiPolygon per zone, in tzid order; `zones` limits it to those names."""
    import numpy as np
    from timezonefinder import TimezoneFinder

    finder = TimezoneFinder(in_memory=True)
    names = finder.timezone_names
    wanted = sorted(set(names) if zones is None else set(zones))
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ValueError(f"unknown time zones: {', '.join(unknown)}")
    boundary_zone = np.asarray(finder.zone_ids)
    try:
        for tzid in wanted:
            boundaries = np.flatnonzero(boundary_zone == names.index(tzid))
            parts = [struct.pack("<BII", 1, _WKB_MULTIPOLYGON | _EWKB_SRID_FLAG, 4326),
                     struct.pack("<I", len(boundaries))]
            vertices = 0
            for boundary_id in boundaries:
                rings = [finder.coords_of(int(boundary_id))]
                rings += [finder.holes.coords_of(h) for h in finder.holes.ids_of(int(boundary_id))]
                parts.append(struct.pack("<BII", 1, _WKB_POLYGON, len(rings)))
                for ring in rings:
                    parts.append(_ring(ring))
                    vertices += ring.shape[1]
            yield ZoneGeometry(tzid, b"".join(parts), len(boundaries), vertices)
    finally:
        finder.cleanup()
