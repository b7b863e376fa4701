"""The one place a result document is shaped: from the adapters' hits (a CityHit, an AsnHit) to
the blocks of our API's result, and to the MaxMind web service's City body. Names in one
language, null for missing.

Nothing here invents data: a field the record lacks is null (the original app said "Unknown").
"""
from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from functools import lru_cache
from typing import NamedTuple

from .overlay import names as overlay_names

LOCALES = ("en", "de", "es", "fr", "ja", "pt-BR", "ru", "zh-CN")

# A record with no city and at least this accuracy radius sits at a country's (or region's)
# centroid: its time zone is the centroid's, which need not be the user's.
APPROXIMATE_RADIUS_KM = 100


class ShapedRecord(NamedTuple):
    """One City record in one language: the result's blocks that come from the record alone, and
    what its time zone is worked out from. The lookup service keeps these per record and shares
    them between results: never mutated, nor are its blocks.

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


_NO_POSTAL_CODE = {"code": None}  # most records have none (DB-IP Lite never has one): one block for all


def shape_city(hit) -> ShapedRecord:
    """A CityHit's blocks. On the hot path of every lookup whose record is not kept yet."""
    if hit.country_present:
        country = ("country", hit.country_iso, hit.country_name, hit.country_eu is True)
    else:
        country = ("country", None, None, None)
    radius = hit.accuracy_radius
    # A record with no city and a large radius sits at a country's (or region's) centroid.
    approximate = not hit.city_present and (radius is None or radius >= APPROXIMATE_RADIUS_KM)
    subdivisions = ("subdivisions",) + (hit.subdivisions or ())
    continent = ("continent", hit.continent_code, hit.continent_name)
    registered = ("registered_country", hit.registered_iso, hit.registered_name)
    shared = _shared_blocks.get  # the blocks are nearly always made already: no call to _shared then
    return ShapedRecord(
        {"name": hit.city_name, "geoname_id": hit.city_geoname_id},
        shared(subdivisions) or _shared(subdivisions),
        shared(country) or _shared(country),
        shared(continent) or _shared(continent),
        shared(registered) or _shared(registered),
        _NO_POSTAL_CODE if hit.postal_code is None else {"code": hit.postal_code},
        {"latitude": hit.latitude, "longitude": hit.longitude, "accuracy_radius": radius},
        hit.time_zone, "approximate" if approximate else "exact",
    )


# An address only the ASN file knows: every City block null.
NO_CITY = ShapedRecord({"name": None, "geoname_id": None}, [], {"iso_code": None, "name": None,
                       "is_in_european_union": None}, {"code": None, "name": None}, {"iso_code": None, "name": None},
                       _NO_POSTAL_CODE, {"latitude": None, "longitude": None, "accuracy_radius": None}, None, "approximate")


def asn_owner(hit) -> tuple:
    """What the service keeps of an ASN record: (number, organization)."""
    return hit.number, hit.organization


def asn_block(owner: tuple | None, network: str | None) -> dict | None:
    """The result's `asn`: who announces the address's network; null when no ASN file knows it."""
    if owner is None:
        return None
    return {"number": owner[0], "organization": owner[1], "network": network}


def result(shaped: ShapedRecord, ip: str, network: str | None, timezone: dict, asn: dict | None,
           overlay: dict | None = None) -> dict:
    """One address's result: the record's shared blocks with the address, its network, the
    time-zone block (which carries the local time, so it is built per lookup) and its owner."""
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
        "asn": asn,
        "overlay": overlay,
    }


def database_block(info, source: str, attribution: str | None) -> dict:
    return {"type": info.database_type, "build_date": info.build_date, "source": source, "attribution": attribution}


class Document(dict):
    """A lookup's document made from a DNS answer (a dict, serialised as one) that also says how
    long that answer may still be used (`dns_ttl`, seconds): the HTTP layer bounds a name's
    caching by it (app/http/caching.py). Documents without a DNS answer are plain dicts."""

    __slots__ = ("dns_ttl",)


def document(query: str, kind: str, canonical_name, results: list, withheld: int, database, asn_database,
             dns_ttl: int | None = None) -> dict:
    found = {
        "query": query,
        "kind": kind,
        "canonical_name": canonical_name,
        "results": results,
        "addresses_withheld": withheld,
        "database": database,
        "asn_database": asn_database,
    }
    if dns_ttl is None:  # every IP lookup: no copy into a Document
        return found
    named = Document(found)
    named.dns_ttl = dns_ttl
    return named


def maxmind_city(record: dict | None, owner: tuple | None, ip: str, network: str) -> dict:
    """The body of MaxMind's City web service (GeoIP2 Precision City, version 2.1): the City
    record as the file has it (every language: the official clients pick theirs) and `traits`
    with the address, its network and, when an ASN file knows it, the autonomous system."""
    body = dict(record) if record else {}
    traits = dict(body.get("traits") or {})
    traits["ip_address"] = ip
    traits["network"] = network
    if owner is not None:
        number, organization = owner
        if number is not None:
            traits["autonomous_system_number"] = number
        if organization is not None:
            traits["autonomous_system_organization"] = organization
    body["traits"] = traits
    return body


# -- the overlay (docs/overlay.md) ----------------------------------------------------------
_NO_CITY_BLOCK = {"name": None, "geoname_id": None}
_NO_LOCATION = {"latitude": None, "longitude": None, "accuracy_radius": None}
_NO_CONTINENT = {"code": None, "name": None}


def overlay_shaped(shaped: ShapedRecord, entry, lang: str) -> ShapedRecord:
    """What an overlay entry (app/overlay) makes of the databases' record: the fields it sets,
    and what depends on a field it changes cleared (another country's region, city and
    coordinates are not this one's). What it repeats unchanged keeps the database's finer fields."""
    city, subdivisions, country, continent = shaped.city, shaped.subdivisions, shaped.country, shaped.continent
    postal, location, time_zone, confidence = shaped.postal, shaped.location, shaped.time_zone, shaped.confidence
    region_moved = False  # the country or region changed: the zone and everything finer are another place's
    if entry.country is not None and entry.country != country["iso_code"]:
        country = {"iso_code": entry.country, "name": overlay_names.country_name(entry.country_name, lang),
                   "is_in_european_union": entry.country in overlay_names.EU_MEMBERS}
        continent = _NO_CONTINENT  # an ISO code does not say which
        region_moved = True
    if entry.region is not None:
        code = entry.region.split("-", 1)[1]  # the databases' form: "BE" for DE-BE
        if region_moved or [subdivision["iso_code"] for subdivision in subdivisions[:1]] != [code]:
            subdivisions = [{"iso_code": code, "name": overlay_names.region_name(entry.region_name, lang)}]
            region_moved = True
    elif region_moved:
        subdivisions = []
    city_moved = region_moved
    if entry.city is not None and (region_moved or (city["name"] or "").casefold() != entry.city.casefold()):
        city, city_moved = {"name": entry.city, "geoname_id": None}, True
    elif region_moved:
        city = _NO_CITY_BLOCK
    if entry.postal is not None:
        postal = {"code": entry.postal}
    elif city_moved:
        postal = _NO_POSTAL_CODE
    if entry.latitude is not None:
        location = {"latitude": entry.latitude, "longitude": entry.longitude, "accuracy_radius": entry.accuracy_radius}
        time_zone, confidence = None, "exact"  # the zone comes from the entry's coordinates (tz_world)
    elif city_moved:
        location = _NO_LOCATION
        if region_moved:
            time_zone = None
    if entry.accuracy_radius is not None and location["accuracy_radius"] != entry.accuracy_radius:
        location = {**location, "accuracy_radius": entry.accuracy_radius}
    if entry.time_zone is not None:
        time_zone = entry.time_zone
    return shaped._replace(city=city, subdivisions=subdivisions, country=country, continent=continent,
                           postal=postal, location=location, time_zone=time_zone, confidence=confidence)


def overlay_block(entry) -> dict:
    """A result's `overlay`: which entry of which file touched it, and what it sets."""
    return {"prefix": entry.prefix, "file": entry.file, "fields": list(entry.fields)}


def maxmind_overlay(record: dict | None, entry) -> dict:
    """The MaxMind-format record with an overlay entry applied by overlay_shaped's rules, names
    in every locale the service has (the overlay's city name in all of them)."""
    body = dict(record) if record else {}
    base = _record_places(body)
    shaped = {locale: overlay_shaped(base, entry, locale) for locale in LOCALES}
    english = shaped["en"]
    if english.country["iso_code"] != base.country["iso_code"]:
        body["country"] = {"iso_code": entry.country, "names": {l: s.country["name"] for l, s in shaped.items()}}
        if english.country["is_in_european_union"]:
            body["country"]["is_in_european_union"] = True
        body.pop("continent", None)
    if english.subdivisions != base.subdivisions:
        if english.subdivisions:
            body["subdivisions"] = [{"iso_code": english.subdivisions[0]["iso_code"],
                                     "names": {l: s.subdivisions[0]["name"] for l, s in shaped.items()}}]
        else:
            body.pop("subdivisions", None)
    if english.city != base.city:
        body.pop("city", None)
        if english.city["name"]:
            body["city"] = {"names": {locale: english.city["name"] for locale in LOCALES}}
    if english.postal != base.postal:
        body.pop("postal", None)
        if english.postal["code"]:
            body["postal"] = {"code": english.postal["code"]}
    location = {key: value for key, value in english.location.items() if value is not None}
    if english.time_zone:
        location["time_zone"] = english.time_zone
    if location:
        body["location"] = location
    else:
        body.pop("location", None)
    return body


def _record_places(body: dict) -> ShapedRecord:
    """The place fields of a raw MaxMind record, in English, shaped like a ShapedRecord (to apply
    the overlay's rules to it)."""
    def name(block):
        return ((block or {}).get("names") or {}).get("en")
    country = body.get("country") or {}
    location = body.get("location") or {}
    return NO_CITY._replace(
        city={"name": name(body.get("city")), "geoname_id": (body.get("city") or {}).get("geoname_id")},
        subdivisions=[{"iso_code": s.get("iso_code"), "name": name(s)} for s in body.get("subdivisions") or ()],
        country={"iso_code": country.get("iso_code"), "name": name(country),
                 "is_in_european_union": country.get("is_in_european_union", False)},
        postal={"code": (body.get("postal") or {}).get("code")},
        location={"latitude": location.get("latitude"), "longitude": location.get("longitude"),
                  "accuracy_radius": location.get("accuracy_radius")},
        time_zone=location.get("time_zone"))


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


def timezone_block(name: str | None, source: str | None, at_sea: bool = False, confidence: str | None = None,
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
