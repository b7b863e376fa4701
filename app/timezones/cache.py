"""A small per-worker cache in front of a time-zone index: City records share coordinates.

Keyed by (latitude, longitude) exactly as given. Answers (None included: "no zone here" is an
answer) are kept in an LRU; failures are not, because lru_cache never stores a call that raised,
so a PostGIS outage is retried rather than remembered. functools.lru_cache is thread-safe and
implemented in C.
"""
from __future__ import annotations

import functools

from app.timezones.base import TimezoneIndex, ZoneMatch


class CachedTimezoneIndex:
    def __init__(self, inner: TimezoneIndex, size: int = 4096):
        self.inner = inner
        self.size = size
        self._zone_at = functools.lru_cache(maxsize=size)(inner.zone_at)

    @property
    def backend(self) -> str:
        return self.inner.backend

    @property
    def version(self):
        return self.inner.version

    def zone_at(self, latitude: float, longitude: float) -> ZoneMatch | None:
        return self._zone_at(latitude, longitude)

    def cache_info(self):
        return self._zone_at.cache_info()

    def status(self) -> dict:
        status = dict(self.inner.status())
        info = self._zone_at.cache_info()
        status["cache"] = {"entries": info.currsize, "capacity": self.size, "hits": info.hits, "misses": info.misses}
        return status

    def close(self) -> None:
        self._zone_at.cache_clear()
        self.inner.close()
