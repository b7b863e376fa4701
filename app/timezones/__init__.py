"""Time-zone indexes: which IANA zone contains a point, from the tz_world polygons."""
from __future__ import annotations

from app.timezones.base import TimezoneIndex, ZoneMatch, is_ocean_zone

__all__ = ["TimezoneIndex", "ZoneMatch", "is_ocean_zone", "open_timezone_index"]


def open_timezone_index(config) -> TimezoneIndex:
    """PostGIS when TZ_DATABASE_URL is set, else the embedded index. Uncached: the lookup service
    keeps the answers, per coordinates and data version (each index's `version`).

    Nothing connects here: the PostGIS pool is made on the first lookup, i.e. after uWSGI forks.
    """
    if config.tz_database_url:
        from app.timezones.postgis import PostgisTimezoneIndex

        return PostgisTimezoneIndex(
            config.tz_database_url,
            statement_timeout_ms=config.tz_statement_timeout_ms,
            pool_size=config.tz_pool_size,
            retry_after=config.tz_retry_after,
        )
    from app.timezones.embedded import EmbeddedTimezoneIndex

    return EmbeddedTimezoneIndex()
