"""Decide whether a candidate .mmdb may replace the live City database.

It must open with the same C reader the workers use, say it is a City database, have a search tree
that fits in the file, answer well-known addresses with location data, decode its first records,
and not be older than the live file (unless forced).
"""
from __future__ import annotations

import hashlib
import ipaddress
import itertools
import os
import time
from dataclasses import dataclass

import maxminddb

from .errors import ChecksumMismatch, InvalidDatabase, NotNewer

# Addresses every City database places somewhere: MaxMind's own test networks (also present in
# their real databases) and big public resolvers.
PROBE_ADDRESSES = ("81.2.69.160", "89.160.20.112", "216.160.83.56", "8.8.8.8", "1.1.1.1",
                   "2001:218::", "2a02:cf40::", "2001:4860:4860::8888")
RECORDS_WALKED = 1000
LOCATION_KEYS = ("city", "country", "continent", "location", "registered_country")
FUTURE_SLACK = 7 * 86400


@dataclass(frozen=True)
class DatabaseFacts:
    database_type: str
    build_epoch: int
    ip_version: int
    node_count: int
    md5: str
    size: int


def file_md5(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_facts(path: str, md5: str | None = None) -> DatabaseFacts:
    """Open and check path; InvalidDatabase says what is wrong with it."""
    size = os.path.getsize(path)
    if size == 0:
        raise InvalidDatabase("the database file is empty")
    try:
        reader = maxminddb.open_database(path, maxminddb.MODE_MMAP_EXT)
    except (maxminddb.InvalidDatabaseError, ValueError, OSError, UnicodeDecodeError, TypeError) as exc:
        raise InvalidDatabase(f"not a readable MaxMind DB file ({_short(exc)})") from None
    try:
        meta = reader.metadata()
        database_type = str(meta.database_type)
        if "city" not in database_type.lower():
            raise InvalidDatabase(f"not a City database: its type is {database_type!r}")
        if meta.ip_version not in (4, 6):
            raise InvalidDatabase(f"IP version {meta.ip_version} is not 4 or 6")
        tree_bytes = meta.node_count * meta.record_size // 4
        if meta.node_count < 1 or meta.record_size not in (24, 28, 32) or tree_bytes >= size:
            raise InvalidDatabase(f"the search tree ({meta.node_count} nodes of {meta.record_size} bits) does not fit the file")
        if meta.build_epoch > time.time() + FUTURE_SLACK:
            raise InvalidDatabase("its build date lies in the future")
        _probe(reader, meta.ip_version)
        return DatabaseFacts(database_type, int(meta.build_epoch), meta.ip_version, meta.node_count,
                             md5 or file_md5(path), size)
    finally:
        reader.close()


def _probe(reader, ip_version: int) -> None:
    hits = 0
    try:
        for address in PROBE_ADDRESSES:
            if ip_version == 4 and ipaddress.ip_address(address).version == 6:
                continue
            record = reader.get(address)
            if isinstance(record, dict) and any(key in record for key in LOCATION_KEYS):
                hits += 1
        # Decoding the first records catches a corrupt data section the probes happened to miss.
        for _ in itertools.islice(iter(reader), RECORDS_WALKED):
            pass
    except (maxminddb.InvalidDatabaseError, ValueError, UnicodeDecodeError, TypeError, OverflowError) as exc:
        raise InvalidDatabase(f"its data section is corrupt ({_short(exc)})") from None
    if hits == 0:
        raise InvalidDatabase("it answers none of the well-known sanity addresses with a location")


def check_replaces(candidate: DatabaseFacts, live: DatabaseFacts | None, expected_md5: str | None, force: bool) -> None:
    if expected_md5 and candidate.md5.lower() != expected_md5.lower():
        raise ChecksumMismatch(f"the md5 of the new database ({candidate.md5}) is not the one the source announced ({expected_md5})")
    if live is not None and not force and candidate.build_epoch < live.build_epoch:
        raise NotNewer(f"the new database was built {_date(candidate.build_epoch)}, before the live one "
                       f"({_date(live.build_epoch)}); use --force to install it anyway")


def _date(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
