"""Time-zone indexes: which IANA zone contains a point, from the tz_world polygons."""
from __future__ import annotations

from app.timezones.base import TimezoneIndex, ZoneMatch, is_ocean_zone
from app.timezones.cache import CachedTimezoneIndex

__all__ = ["TimezoneIndex", "ZoneMatch", "is_ocean_zone", "open_timezone_index"]


def open_timezone_index(config) -> TimezoneIndex:
    """PostGIS when TZ_DATABASE_URL is set, behind a per-worker coordinate cache; else the embedded
    index, uncached: it answers in a few microseconds, about what a cache lookup costs, and the City
    adapter keeps each record's answer anyway (so a coordinate cache would mostly hold copies).

    Nothing connects here: the PostGIS pool is made on the first lookup, i.e. after uWSGI forks.
    """
    if config.tz_database_url:
        from app.timezones.postgis import PostgisTimezoneIndex

        return CachedTimezoneIndex(PostgisTimezoneIndex(
            config.tz_database_url,
            statement_timeout_ms=config.tz_statement_timeout_ms,
            pool_size=config.tz_pool_size,
            retry_after=config.tz_retry_after,
        ), size=config.tz_cache_size)
    from app.timezones.embedded import EmbeddedTimezoneIndex

    return EmbeddedTimezoneIndex()
