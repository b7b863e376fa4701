"""What a result needs from each kind of MaxMind DB record: one table per kind, declared once.

A `FieldTable` names each value a result needs and where it sits in a record (a path of map
keys) and what it must be. Everything else is derived from it:
- the hit type (`table.hit_type`, a NamedTuple with those names) the adapters return;
- the table the C module is told to read (`table.spec`): `mmdb_records.OffsetReader(path,
  table.spec)` compiles it and its `read_fields(offset, lang)` returns the values in this order,
  read straight off libmaxminddb's entry list with no Python object for the rest of the record;
- the same reading from a record the maxminddb extension decoded (`table.read_decoded`), used
  where the C module is absent and to check it: app/record_offsets.py compares both on every file
  it loads, and a disagreement is reported by /readyz (and fails tests/test_record_fields.py).

Kinds (the same strings the C module knows): a value of any other type counts as absent, so an
odd or damaged file cannot hand the shaping code a string where it compares numbers.
  text, whole, real, flag   a string, an integer, a float, a boolean
  name                      a "names" map: the name in the asked language, else the English one
  present                   the path holds a non-empty map (always True or False)
  list                      an array of maps, each read with the field's own sub-table: a tuple
                            of tuples (a part that is not a map gives all-None)
"""
from __future__ import annotations

from collections import namedtuple
from typing import NamedTuple

KINDS = ("text", "whole", "real", "flag", "name", "present", "list")
_EMPTY: dict = {}
_new = tuple.__new__


class Field(NamedTuple):
    name: str
    path: tuple
    kind: str
    items: "FieldTable | None" = None  # the sub-table of a "list"


class FieldTable:
    def __init__(self, hit_name: str, fields: list[Field], located: tuple = ("network", "version")):
        for field in fields:
            if field.kind not in KINDS or (field.kind == "list") != (field.items is not None) or not field.path:
                raise ValueError(f"bad field {field!r}")
        self.fields = tuple(fields)
        self.names = tuple(field.name for field in fields)
        # A hit is the values, then where they were found: the network and the file version.
        self.hit_type = namedtuple(hit_name, self.names + located)
        self.spec = tuple((field.path, field.kind, field.items.spec if field.items else None) for field in fields)

    def make(self, values) -> tuple:
        """The hit from the values in table order (as the C module returns them), the network
        and the version."""
        return _new(self.hit_type, values)  # _make's checks and extra calls, on every record read

    def read_decoded(self, record, lang: str) -> tuple:
        """The values in table order from a record decoded by the maxminddb extension."""
        return tuple(_read(record, field, lang) for field in self.fields)


def _map(value) -> dict:
    return value if type(value) is dict else _EMPTY


def _read(record, field: Field, lang: str):
    value = record
    for key in field.path:
        value = _map(value).get(key)
    kind = field.kind
    if kind == "text":
        return value if type(value) is str else None
    if kind == "whole":
        return value if type(value) is int else None
    if kind == "real":
        return value if type(value) is float else None
    if kind == "flag":
        return value if type(value) is bool else None
    if kind == "present":
        return bool(_map(value))
    if kind == "name":
        names = _map(value)
        in_language, in_english = names.get(lang), names.get("en")
        return ((in_language if type(in_language) is str else None)
                or (in_english if type(in_english) is str else None))
    if type(value) is not list:  # list
        return None
    return tuple(field.items.read_decoded(item, lang) for item in value)


def _place(prefix: str, key: str, *extra: Field) -> list[Field]:
    return [Field(f"{prefix}_name", (key, "names"), "name"), *extra]


CITY = FieldTable("CityHit", [
    Field("city_present", ("city",), "present"),  # a city, not a country's or region's centroid
    *_place("city", "city", Field("city_geoname_id", ("city", "geoname_id"), "whole")),
    Field("country_present", ("country",), "present"),
    *_place("country", "country", Field("country_iso", ("country", "iso_code"), "text"),
            Field("country_eu", ("country", "is_in_european_union"), "flag")),
    *_place("continent", "continent", Field("continent_code", ("continent", "code"), "text")),
    *_place("registered", "registered_country", Field("registered_iso", ("registered_country", "iso_code"), "text")),
    Field("subdivisions", ("subdivisions",), "list", FieldTable("Subdivision", [
        Field("iso_code", ("iso_code",), "text"),
        Field("name", ("names",), "name"),
    ], located=())),
    Field("postal_code", ("postal", "code"), "text"),
    Field("latitude", ("location", "latitude"), "real"),
    Field("longitude", ("location", "longitude"), "real"),
    Field("accuracy_radius", ("location", "accuracy_radius"), "whole"),
    Field("time_zone", ("location", "time_zone"), "text"),
])

ASN = FieldTable("AsnHit", [
    Field("number", ("autonomous_system_number",), "whole"),
    Field("organization", ("autonomous_system_organization",), "text"),
])
