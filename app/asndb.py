"""The ASN database adapter: `AsnDatabase.lookup(address) -> AsnHit | None`.

An AsnHit carries who announces the address's network (record_fields.ASN: the autonomous
system's number and organisation), the network and the file version. Reads GeoLite2-ASN,
GeoIP2-ISP-style files with the same keys, and DB-IP's ASN Lite MMDB. How the file is mapped and
swapped, independently of the City file: mmdb.py.
"""
from __future__ import annotations

from .mmdb import MmdbDatabase
from .record_fields import ASN

AsnHit = ASN.hit_type


class AsnDatabase(MmdbDatabase):
    kind = "ASN"
    table = ASN

    @staticmethod
    def accepts(database_type: str) -> bool:
        kind = database_type.lower()
        return "asn" in kind and "city" not in kind and "country" not in kind
