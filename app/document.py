"""Shapes one City record into the result our API returns: names in one language, null for missing.

Nothing here invents data: a field the record lacks is null (the original app said "Unknown").
"""
from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from functools import lru_cache
from typing import NamedTuple

from .city_fields import CityFields

LOCALES = ("en", "de", "es", "fr", "ja", "pt-BR", "ru", "zh-CN")

# A record with no city and at least this accuracy radius sits at a country's (or region's)
# centroid: its time zone is the centroid's, which need not be the user's.
APPROXIMATE_RADIUS_KM = 100


class ShapedRecord(NamedTuple):
    """One City record in one language: the result's blocks that come from the record alone, and
    what its time zone is worked out from. Shared by every result with the same record and language
    (the City adapter keeps it per record): never mutated, nor are its blocks.

    A flat tuple rather than a result template: a kept record then costs about 1 KB instead of
    1.6 (a 12-key dict is 650 bytes), so the same memory keeps more records."""

    city: dict
    subdivisions: list
    country: dict
    continent: dict
    registered_country: dict
    postal: dict
    location: dict             # its latitude and longitude are what a fallback time zone is looked up at
    time_zone: str | None
    confidence: str
    # The tz_world answer for a record without a time zone of its own, once one was had:
    # (ZoneMatch or None,). None while not worked out (e.g. PostGIS was down): then each lookup asks.
    fallback: tuple | None = None


_NO_POSTAL_CODE = {"code": None}  # most records have none (DB-IP Lite never has one): one block for all


def shape_fields(fields: CityFields, fallback: tuple | None = None) -> ShapedRecord:
    """On the hot path of every lookup whose record is not kept yet."""
    (city_present, city_name, city_geoname_id, country_iso, country_name, country_eu, continent_code,
     continent_name, registered_iso, registered_name, subdivisions, postal_code, latitude, longitude,
     radius, time_zone) = fields
    # A record with no city and a large radius sits at a country's (or region's) centroid.
    approximate = not city_present and (radius is None or radius >= APPROXIMATE_RADIUS_KM)
    return ShapedRecord(
        {"name": city_name, "geoname_id": city_geoname_id},
        _shared(("subdivisions",) + subdivisions),
        _shared(("country", country_iso, country_name, country_eu)),
        _shared(("continent", continent_code, continent_name)),
        _shared(("registered_country", registered_iso, registered_name)),
        _NO_POSTAL_CODE if postal_code is None else {"code": postal_code},
        {"latitude": latitude, "longitude": longitude, "accuracy_radius": radius},
        time_zone, "approximate" if approximate else "exact", fallback,
    )


def result(shaped: ShapedRecord, ip: str, network: str | None, timezone: dict) -> dict:
    """One address's result: the record's shared blocks with the address, its network and the
    time-zone block (which carries the local time, so it is built per lookup)."""
    city, subdivisions, country, continent, registered, postal, location = shaped[:7]
    return {
        "ip": ip,
        "network": network,
        "city": city,
        "subdivisions": subdivisions,
        "country": country,
        "continent": continent,
        "registered_country": registered,
        "postal": postal,
        "location": location,
        "timezone": timezone,
    }


# Blocks that many records have in common (a country, a continent, a region), built once and
# shared by every template that has them: about half of a kept record's memory otherwise.
_SHARED_LIMIT = 20_000  # countries x languages is far less; regions are a few thousand
_shared_blocks: dict[tuple, object] = {}


def _shared(key: tuple):
    block = _shared_blocks.get(key)
    if block is None:
        block = _build_block(key)
        if len(_shared_blocks) < _SHARED_LIMIT:
            _shared_blocks[key] = block
    return block


def _build_block(key: tuple):
    kind = key[0]
    if kind == "country":
        return {"iso_code": key[1], "name": key[2], "is_in_european_union": key[3]}
    if kind == "continent":
        return {"code": key[1], "name": key[2]}
    if kind == "registered_country":
        return {"iso_code": key[1], "name": key[2]}
    return [{"iso_code": iso_code, "name": name} for iso_code, name in key[1:]]  # subdivisions


@lru_cache(maxsize=1024)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


_clock: dict[str, tuple[int, str, str]] = {}


def local_clock(name: str, now: float | None = None) -> tuple[str | None, str | None]:
    """(utc_offset, local_time) in a zone, now. Computed once per zone and second: records share zones."""
    second = int(time.time() if now is None else now)
    cached = _clock.get(name)
    if cached is not None and cached[0] == second:
        return cached[1], cached[2]
    zone = _zone(name)
    if zone is None:
        return None, None
    local_time = dt.datetime.fromtimestamp(second, zone).isoformat()
    _clock[name] = (second, local_time[-6:], local_time)
    return local_time[-6:], local_time


_blocks: dict[tuple, tuple[int, dict]] = {}


def timezone_block(name: str | None, source: str | None, *, at_sea: bool = False, confidence: str | None = None,
                   degraded: bool = False) -> dict:
    """The result's timezone object. Built once per distinct block and second and shared by every
    result in that second (documents are never mutated after they are built)."""
    key = (name, source, at_sea, confidence, degraded)
    second = int(time.time())
    cached = _blocks.get(key)
    if cached is not None and cached[0] == second:
        return cached[1]
    utc_offset, local_time = local_clock(name, second) if name else (None, None)
    block = {
        "name": name,
        "source": source if name else None,
        "utc_offset": utc_offset,
        "local_time": local_time,
        "at_sea": at_sea,
        "confidence": confidence if name else None,
        "degraded": degraded,
    }
    if len(_blocks) > 4096:  # bounded: zones x sources x flags is far smaller in practice
        _blocks.clear()
    _blocks[key] = (second, block)
    return block


def preferred_language(requested: str | None, accept_language=None) -> str:
    """`?lang=` wins when it names a locale we have; then Accept-Language; then English."""
    if requested:
        for locale in LOCALES:
            if requested.lower() == locale.lower():
                return locale
    if accept_language is not None:
        match = accept_language.best_match(LOCALES)
        if match:
            return match
    return "en"
