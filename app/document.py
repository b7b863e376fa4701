"""Shapes one City record into the result our API returns: names in one language, null for missing.

Nothing here invents data: a field the record lacks is null (the original app said "Unknown").
"""
from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from functools import lru_cache
from typing import NamedTuple

LOCALES = ("en", "de", "es", "fr", "ja", "pt-BR", "ru", "zh-CN")

# A record with no city and at least this accuracy radius sits at a country's (or region's)
# centroid: its time zone is the centroid's, which need not be the user's.
APPROXIMATE_RADIUS_KM = 100


_EMPTY: dict = {}


def _name(entry: dict, lang: str) -> str | None:
    names = entry.get("names")
    return (names.get(lang) or names.get("en")) if names else None


class ShapedRecord(NamedTuple):
    """One City record in one language: the result's fields that come from the record alone, and
    what its time zone is worked out from. Shared by every result with the same record and language
    (the City adapter keeps it per record): never mutated.

    `template` is a result with ip, network and timezone still None: a result is a shallow copy
    with those three set (copying keeps the key order and is cheaper than building a new dict)."""

    template: dict
    time_zone: str | None
    latitude: float | None
    longitude: float | None
    confidence: str
    # The tz_world answer for a record without a time zone of its own, once one was had:
    # (ZoneMatch or None,). None while not worked out (e.g. PostGIS was down): then each lookup asks.
    fallback: tuple | None = None


def shape_record(record: dict, lang: str) -> ShapedRecord:
    """On the hot path of every lookup whose record is not kept yet: absent parts default to one
    shared empty dict rather than branching per field."""
    get = record.get
    city = get("city", _EMPTY)
    country = get("country")
    continent = get("continent", _EMPTY)
    registered = get("registered_country", _EMPTY)
    location = get("location", _EMPTY)
    radius = location.get("accuracy_radius")
    if country:
        country_block = _shared(("country", country.get("iso_code"), _name(country, lang),
                                 country.get("is_in_european_union", False)))
    else:
        country_block = _shared(("country", None, None, None))
    template = {
        "ip": None,
        "network": None,
        "city": {"name": _name(city, lang), "geoname_id": city.get("geoname_id")},
        "subdivisions": _shared(("subdivisions",) + tuple(
            (sub.get("iso_code"), _name(sub, lang)) for sub in get("subdivisions", ()))),
        "country": country_block,
        "continent": _shared(("continent", continent.get("code"), _name(continent, lang))),
        "registered_country": _shared(("registered_country", registered.get("iso_code"), _name(registered, lang))),
        "postal": {"code": get("postal", _EMPTY).get("code")},
        "location": {
            "latitude": location.get("latitude"),
            "longitude": location.get("longitude"),
            "accuracy_radius": radius,
        },
        "timezone": None,
    }
    # A record with no city and a large radius sits at a country's (or region's) centroid.
    approximate = not city and (radius is None or radius >= APPROXIMATE_RADIUS_KM)
    return ShapedRecord(template, location.get("time_zone"), location.get("latitude"), location.get("longitude"),
                        "approximate" if approximate else "exact")


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
