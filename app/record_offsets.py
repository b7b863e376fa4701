"""Where an address's record sits in a MaxMind DB, and the record read at that place.

The maxminddb extension decodes the whole record (every language of every name) into new Python
objects on each `get`; that decode is most of a lookup's cost. Many networks share one record (a
city's, a country's), and a record's offset in the data section identifies it within one file.
Knowing the offset first lets the City adapter keep what it derives from a record and skip the
decode when the same record comes back; on a miss, what a result needs (CityFields) is read at
that offset, with no second walk down the tree and no Python object for the rest of the record.

Both steps are libmaxminddb's, through `mmdb_records` (app/native/mmdb_records.c, built into the
venv by the Makefile and the Dockerfile). `open_offset_reader` checks its answers against the
extension's before anything relies on them, and returns None whenever it cannot be sure or the
module is not installed: the adapter then decodes every record with the extension, as before.
"""
from __future__ import annotations

import ipaddress
import logging
import random

from .city_fields import city_fields

try:
    import mmdb_records
except ImportError:  # not built: the service decodes every record (slower, same answers)
    mmdb_records = None

log = logging.getLogger(__name__)


def open_offset_reader(path: str, reader, ip_version: int, samples: int = 256):
    """An `mmdb_records.OffsetReader` on `path` whose answers match `reader`'s (the extension's) on
    sample addresses, or None. Its `locate(int(address), address.version)` gives (offset or None,
    prefix length as the extension counts it, the network's text or None where ipaddress writes
    it its own way); `read_fields(offset, language)` the CityFields of
    the record there (`read(offset)`, the whole record); all raise ValueError on damaged data."""
    if mmdb_records is None:
        log.info("mmdb_records is not installed: City lookups decode every record")
        return None
    try:
        offsets = mmdb_records.OffsetReader(path)
    except OSError as exc:
        log.warning("record offsets unavailable for %s: %s", path, exc)
        return None
    if offsets.ip_version != ip_version or not _agrees(offsets, reader, ip_version, samples):
        log.warning("record offsets disagree with the maxminddb extension for %s: not used", path)
        offsets.close()
        return None
    return offsets


def _agrees(offsets, reader, ip_version: int, samples: int) -> bool:
    """Same found/not found, prefix, record and CityFields as the extension (and city_fields) on
    random addresses and on the first networks of the file. False, never an exception, when the file cannot be read far enough
    to tell (a damaged data section still serves the other records through plain lookups, each
    failing one answering DATABASE_UNAVAILABLE)."""
    rng = random.Random(0)
    addresses = [ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(samples)]
    if ip_version == 6:
        # drawn from 2000::/4, the allocated unicast space, where records exist
        addresses += [ipaddress.IPv6Address((0x2 << 124) | rng.getrandbits(124)) for _ in range(samples // 4)]
    try:
        for count, (network, _record) in enumerate(reader):
            if count == samples:
                break
            addresses.append(network.network_address)
        for address in addresses:
            offset, prefix, _network = offsets.locate(int(address), address.version)
            record, expected_prefix = reader.get_with_prefix_len(address)
            if prefix != expected_prefix or (offset is None) != (record is None):
                return False
            if offset is not None and (offsets.read(offset) != record
                                       or offsets.read_fields(offset, "en") != city_fields(record, "en")):
                return False
    except Exception:  # noqa: BLE001 - whatever the file holds, checking it must not fail the load
        log.warning("record offsets could not be checked", exc_info=True)
        return False
    return True
