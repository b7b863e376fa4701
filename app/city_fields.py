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


# The type each value must have; anything else counts as absent, as in mmdb_records (a damaged
# or odd file must not hand the shaping code a string where it compares numbers).
def _text(value) -> str | None:
    return value if type(value) is str else None


def _whole(value) -> int | None:
    return value if type(value) is int else None


def _real(value) -> float | None:
    return value if type(value) is float else None


def _map(value) -> dict:
    return value if type(value) is dict else _EMPTY


def _name(entry: dict, lang: str) -> str | None:
    names = _map(entry.get("names"))
    return _text(names.get(lang)) or _text(names.get("en"))


def city_fields(record: dict, lang: str) -> CityFields:
    record = _map(record)
    get = record.get
    city = _map(get("city"))
    country = _map(get("country"))
    continent = _map(get("continent"))
    registered = _map(get("registered_country"))
    location = _map(get("location"))
    subdivisions = get("subdivisions")
    if country:
        country_iso, country_name = _text(country.get("iso_code")), _name(country, lang)
        country_eu = country.get("is_in_european_union")
        country_eu = country_eu if type(country_eu) is bool else False
    else:
        country_iso = country_name = country_eu = None
    return CityFields(
        bool(city), _name(city, lang), _whole(city.get("geoname_id")),
        country_iso, country_name, country_eu,
        _text(continent.get("code")), _name(continent, lang),
        _text(registered.get("iso_code")), _name(registered, lang),
        tuple((_text(_map(sub).get("iso_code")), _name(_map(sub), lang))
              for sub in (subdivisions if type(subdivisions) is list else ())),
        _text(_map(get("postal")).get("code")),
        _real(location.get("latitude")), _real(location.get("longitude")), _whole(location.get("accuracy_radius")),
        _text(location.get("time_zone")),
    )
