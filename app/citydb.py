"""The City database adapter: `CityDatabase.lookup(address, lang) -> CityHit | None`.

A CityHit carries what a result needs from a City record in one language (record_fields.CITY:
names in the language, else English; ids, codes, coordinates, radius, time zone), the network
and the file version. How the file is mapped and swapped: mmdb.py.
"""
from __future__ import annotations

from .mmdb import DatabaseInfo, Located, MmdbDatabase, network_text
from .record_fields import CITY

CityHit = CITY.hit_type

__all__ = ["CityDatabase", "CityHit", "DatabaseInfo", "Located", "network_text"]


class CityDatabase(MmdbDatabase):
    kind = "City"
    table = CITY

    @staticmethod
    def accepts(database_type: str) -> bool:
        return "city" in database_type.lower()


def open_city_reader(path: str):
    """Open and check a City database; raises ValueError with a readable reason."""
    return CityDatabase.open_reader(path)
