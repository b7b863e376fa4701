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


def _name(entry: dict | None, lang: str) -> str | None:
    if not entry:
        return None
    names = entry.get("names")
    if not names:
        return None
    return names.get(lang) or names.get("en")


def _get(entry: dict | None, key: str):
    return entry.get(key) if entry else None


def shape_record(record: dict, ip: str, network: str, lang: str) -> dict:
    """Everything but the time zone (which may need another adapter)."""
    city = record.get("city")
    country = record.get("country")
    continent = record.get("continent")
    registered = record.get("registered_country")
    location = record.get("location") or {}
    return {
        "ip": ip,
        "network": network,
        "city": {"name": _name(city, lang), "geoname_id": _get(city, "geoname_id")},
        "subdivisions": [
            {"iso_code": sub.get("iso_code"), "name": _name(sub, lang)} for sub in record.get("subdivisions") or ()
        ],
        "country": {
            "iso_code": _get(country, "iso_code"),
            "name": _name(country, lang),
            "is_in_european_union": bool(_get(country, "is_in_european_union")) if country else None,
        },
        "continent": {"code": _get(continent, "code"), "name": _name(continent, lang)},
        "registered_country": {"iso_code": _get(registered, "iso_code"), "name": _name(registered, lang)},
        "postal": {"code": _get(record.get("postal"), "code")},
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


def timezone_block(name: str | None, source: str | None, *, at_sea: bool = False, confidence: str | None = None,
                   degraded: bool = False) -> dict:
    utc_offset, local_time = local_clock(name) if name else (None, None)
    return {
        "name": name,
        "source": source if name else None,
        "utc_offset": utc_offset,
        "local_time": local_time,
        "at_sea": at_sea,
        "confidence": confidence if name else None,
        "degraded": degraded,
    }


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
