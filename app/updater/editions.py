"""The kinds of database the updater keeps: one `Edition` per kind, everything else derived.

An edition says where its live file is, which database types it accepts (the adapters' own
`accepts`, so the updater and the service can never disagree), what its probe addresses must
answer (inspect_db.py), MaxMind's edition ID and DB-IP's file name for it, and whether the
packaged snapshot can fill an empty volume. Each edition has its own live path, so its own
lock, state file, `.previous` for rollback and staging files (all named after the live path).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..asndb import AsnDatabase
from ..citydb import CityDatabase


@dataclass(frozen=True)
class Edition:
    name: str                         # "city" | "asn": --edition, the fleet's name, /readyz's kind
    kind: str                         # "City" | "ASN": in messages
    accepts: Callable[[str], bool]    # database_type -> may be installed as this edition
    probe: str                        # what inspect_db.py counts as an answer: "location" | "asn"
    dbip_file: str                    # DB-IP's monthly file, {month} = YYYY-MM
    has_snapshot: bool                # the packaged DB-IP City Lite can fill an empty volume


EDITIONS = {
    "city": Edition("city", "City", CityDatabase.accepts, "location", "dbip-city-lite-{month}.mmdb.gz", True),
    "asn": Edition("asn", "ASN", AsnDatabase.accepts, "asn", "dbip-asn-lite-{month}.mmdb.gz", False),
}
NAMES = tuple(EDITIONS)


def edition_named(name: str) -> Edition:
    return EDITIONS[name]
