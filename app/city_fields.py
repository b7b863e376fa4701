"""What a result needs from a City record, in one language: a flat tuple, not the record.

The City adapter hands these to the lookup service instead of raw records. When mmdb_records is
installed (app/native), they are read straight off libmaxminddb's entry list by
`OffsetReader.read_fields`, with no Python object made for the rest of the record; `city_fields`
below is the same extraction from a decoded record (the path without it). Both must agree
field for field: tests/test_record_cache.py compares them on every network of the test files.
"""
from __future__ import annotations

from typing import NamedTuple

_EMPTY: dict = {}


class CityFields(NamedTuple):
    city_present: bool         # the record has a (non-empty) city: it locates a city, not a centroid
    city_name: str | None
    city_geoname_id: int | None
    country_iso: str | None    # the three country fields are None when the record has no country
    country_name: str | None
    country_eu: bool | None    # False when a country does not say
    continent_code: str | None
    continent_name: str | None
    registered_iso: str | None
    registered_name: str | None
    subdivisions: tuple        # ((iso_code, name), ...), most general first
    postal_code: str | None
    latitude: float | None
    longitude: float | None
    accuracy_radius: int | None
    time_zone: str | None


def _name(entry: dict, lang: str) -> str | None:
    names = entry.get("names")
    return (names.get(lang) or names.get("en")) if names else None


def city_fields(record: dict, lang: str) -> CityFields:
    get = record.get
    city = get("city", _EMPTY)
    country = get("country")
    continent = get("continent", _EMPTY)
    registered = get("registered_country", _EMPTY)
    location = get("location", _EMPTY)
    if country:
        country_iso, country_name = country.get("iso_code"), _name(country, lang)
        country_eu = country.get("is_in_european_union", False)
    else:
        country_iso = country_name = country_eu = None
    return CityFields(
        bool(city), _name(city, lang), city.get("geoname_id"),
        country_iso, country_name, country_eu,
        continent.get("code"), _name(continent, lang),
        registered.get("iso_code"), _name(registered, lang),
        tuple((sub.get("iso_code"), _name(sub, lang)) for sub in get("subdivisions", ())),
        get("postal", _EMPTY).get("code"),
        location.get("latitude"), location.get("longitude"), location.get("accuracy_radius"),
        location.get("time_zone"),
    )
