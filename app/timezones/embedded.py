"""In-process time-zone index over the packaged boundaries (timezonefinder), for when there is no PostGIS.

Same polygons and same overlap rule as the PostGIS index (see `overlap.py`), so both answer alike.
timezonefinder's own `timezone_at` picks among overlapping zones by its internal candidate order,
which changes between data builds; to apply our rule we walk the candidates of the point's
shortcut cell ourselves, in rule order, with timezonefinder's own point-in-polygon test.
Cells covered by one zone (most of the world) are answered from the shortcut table alone.
"""
from __future__ import annotations

import math
import queue
import threading

from app.timezones.base import ZoneMatch, is_ocean_zone
from app.timezones.overlap import precedence
from app.timezones.packaged_data import ATTRIBUTION, packaged_release


class EmbeddedTimezoneIndex:
    backend = "embedded"

    def __init__(self, data_dir: str | None = None, pool_size: int = 2):
        self._data_dir = data_dir
        self._finder_class = None  # and the rest _load_library sets, on the first lookup
        # A timezonefinder instance must not be used by two threads at once (its docs say so), and
        # each holds about 2.3 MB of arrays: rather than one per thread (64 per uWSGI worker), a few
        # are lent out. Lookups hold the GIL, so more than a couple would only cost memory.
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._pool_size = pool_size
        self._pool_lock = threading.Lock()
        self._all: list = []
        self._candidate_groups: dict[int, tuple[tuple[int, tuple[int, ...]], ...]] = {}
        # Nothing is loaded until the first lookup, timezonefinder and numpy not even imported:
        # with a City file that has its own time zones (GeoLite2) a worker may never need a
        # finder, and each costs megabytes.
        self._names: list[str] | None = None
        self._matches: list[ZoneMatch] | None = None  # one per zone id: answers are shared, never rebuilt
        self.release = packaged_release(data_dir=data_dir)
        # What the answers come from: the packaged data never changes under a running worker.
        self.version = self.release.label()

    def _borrow(self):
        """An idle finder; a new one while fewer than pool_size exist; else wait for one."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._pool_lock:
            if len(self._all) < self._pool_size:
                if self._finder_class is None:
                    self._load_library()
                finder = self._finder_class(bin_file_location=self._data_dir, in_memory=False)
                self._all.append(finder)
                if self._names is None:
                    self._names = list(finder.timezone_names)
                    self._matches = [ZoneMatch(name, is_ocean_zone(name)) for name in self._names]
                return finder
        return self._idle.get()

    def _load_library(self) -> None:
        """What the lookups take from timezonefinder (set before the first finder is lent out)."""
        from h3.api import numpy_int as h3
        from timezonefinder import TimezoneFinder
        from timezonefinder.configs import SHORTCUT_H3_RES
        from timezonefinder.shortcut_index import ABSENT
        from timezonefinder.utils import coord2int

        self._finder_class = TimezoneFinder
        self._cell_of = h3.latlng_to_cell
        self._resolution = SHORTCUT_H3_RES
        self._absent = ABSENT
        self._coord2int = coord2int

    def zone_at(self, latitude: float, longitude: float) -> ZoneMatch | None:
        if not (math.isfinite(latitude) and math.isfinite(longitude)):
            return None
        if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
            return None
        finder = self._borrow()
        try:
            zone_id = self._zone_id_at(finder, latitude, longitude)
        finally:
            self._idle.put(finder)
        return None if zone_id is None else self._matches[zone_id]

    def _zone_id_at(self, finder, latitude: float, longitude: float) -> int | None:
        entry = finder.shortcuts.entry_of(self._cell_of(latitude, longitude, self._resolution))
        if entry >= 0:  # the whole cell lies in one zone
            return entry
        if entry == self._absent:
            return None
        groups = self._groups(finder, entry)
        x, y = self._coord2int(longitude), self._coord2int(latitude)
        for zone_id, boundaries in groups[:-1]:
            for boundary_id in boundaries:
                if finder.inside_of_polygon(boundary_id, x, y):
                    return zone_id
        # The cell's candidates cover it completely (ocean zones fill every gap), so when no
        # earlier zone holds the point the last one does; timezonefinder relies on the same fact.
        return groups[-1][0]

    def _groups(self, finder, entry: int):
        """The cell's candidate polygons grouped by zone, zones in overlap-rule order (cached per cell)."""
        groups = self._candidate_groups.get(entry)
        if groups is None:
            by_zone: dict[int, list[int]] = {}
            for boundary_id in finder.shortcuts.candidates_of(entry).tolist():
                by_zone.setdefault(int(finder.zone_ids[boundary_id]), []).append(boundary_id)
            ordered = sorted(by_zone, key=lambda zone_id: precedence(self._names[zone_id]))
            groups = tuple((zone_id, tuple(by_zone[zone_id])) for zone_id in ordered)
            self._candidate_groups[entry] = groups  # racing threads compute the same value
        return groups

    def status(self) -> dict:
        return {
            "backend": self.backend,
            "state": "ok",
            "detail": f"in-process index (timezonefinder {self.release.finder_version})",
            "data_release": self.release.label(),
            "attribution": ATTRIBUTION,
        }

    def close(self) -> None:
        with self._pool_lock:
            while True:  # idle finders are dropped; a later lookup makes new ones
                try:
                    self._idle.get_nowait()
                except queue.Empty:
                    break
            for finder in self._all:
                finder.cleanup()
            self._all.clear()
