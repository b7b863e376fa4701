"""Shapes one City record into the result our API returns: names in one language, null for missing.

Nothing here invents data: a field the record lacks is null (the original app said "Unknown").
"""
from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from functools import lru_cache

LOCALES = ("en", "de", "es", "fr", "ja", "pt-BR", "ru", "zh-CN")

# A record with no city and at least this accuracy radius sits at a country's (or region's)
# centroid: its time zone is the centroid's, which need not be the user's.
APPROXIMATE_RADIUS_KM = 100


_EMPTY: dict = {}


def _name(entry: dict, lang: str) -> str | None:
    names = entry.get("names")
    return (names.get(lang) or names.get("en")) if names else None


def shape_record(record: dict, ip: str, network: str, lang: str) -> dict:
    """Everything but the time zone (which may need another adapter).

    On the hot path of every lookup: absent parts default to one shared empty dict rather than
    branching per field."""
    get = record.get
    city = get("city", _EMPTY)
    country = get("country")
    continent = get("continent", _EMPTY)
    registered = get("registered_country", _EMPTY)
    location = get("location", _EMPTY)
    return {
        "ip": ip,
        "network": network,
        "city": {"name": _name(city, lang), "geoname_id": city.get("geoname_id")},
        "subdivisions": [{"iso_code": sub.get("iso_code"), "name": _name(sub, lang)} for sub in get("subdivisions", ())],
        "country": {
            "iso_code": country.get("iso_code"),
            "name": _name(country, lang),
            "is_in_european_union": country.get("is_in_european_union", False),
        } if country else {"iso_code": None, "name": None, "is_in_european_union": None},
        "continent": {"code": continent.get("code"), "name": _name(continent, lang)},
        "registered_country": {"iso_code": registered.get("iso_code"), "name": _name(registered, lang)},
        "postal": {"code": get("postal", _EMPTY).get("code")},
        "location": {
            "latitude": location.get("latitude"),
            "longitude": location.get("longitude"),
            "accuracy_radius": location.get("accuracy_radius"),
        },
    }


def timezone_confidence(record: dict) -> str:
    radius = (record.get("location") or {}).get("accuracy_radius")
    if not record.get("city") and (radius is None or radius >= APPROXIMATE_RADIUS_KM):
        return "approximate"
    return "exact"


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
