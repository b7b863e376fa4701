"""The native reader of a file: where an address's record sits, and a field table's values read at
that place, both by libmaxminddb through `mmdb_records` (app/native/mmdb_records.c, built into the
venv by the Makefile and the Dockerfile).

The maxminddb extension decodes the whole record (every language of every name) into new Python
objects on each `get`; that decode is most of a lookup's cost. Many networks share one record (a
city's, a country's, an AS's), and a record's offset in the data section names it within one
file, so the lookup service can keep what it makes of a record and skip the read when the same
record comes back; on a miss only the table's values are read, with no Python object for the rest.

`open_native_reader` checks the module against the extension and the table's Python reading
(record_fields.py) on every file before anything relies on it. When the module is not installed
or disagrees, the adapter reads through the extension (same answers, slower) and says why in its
`reader_status()`, which /readyz reports as a problem: never a quiet slow path.
"""
from __future__ import annotations

import ipaddress
import logging
import random

try:
    import mmdb_records
except ImportError:  # not built: the adapters decode every record through the extension
    mmdb_records = None

log = logging.getLogger(__name__)

NOT_INSTALLED = "mmdb_records is not installed (build app/native): records are decoded by the maxminddb extension"


def open_native_reader(path: str, reader, ip_version: int, table, samples: int = 256):
    """(an `mmdb_records.OffsetReader` on `path` with `table`, None) when its answers match
    `reader`'s (the extension's) on sample addresses, else (None, the reason)."""
    if mmdb_records is None:
        return None, NOT_INSTALLED
    try:
        native = mmdb_records.OffsetReader(path, table.spec)
    except OSError as exc:
        log.warning("mmdb_records cannot open %s: %s", path, exc)
        return None, f"mmdb_records cannot open the file: {exc}"
    disagreement = disagreement_with_extension(native, reader, ip_version, table, samples)
    if native.ip_version != ip_version:
        disagreement = "the IP version differs"
    if disagreement is not None:
        log.error("mmdb_records disagrees with the maxminddb extension on %s: %s", path, disagreement)
        native.close()
        return None, f"mmdb_records disagrees with the maxminddb extension ({disagreement}): not used"
    return native, None


def disagreement_with_extension(native, reader, ip_version: int, table, samples: int = 256,
                                languages=("en",)) -> str | None:
    """What differs between the module and the extension (found or not, prefix length, the whole
    record at the offset, the table's values against record_fields' reading) on random addresses
    and on the first networks of the file; None when nothing does. A file that cannot be read far
    enough to tell is no disagreement (a damaged data section still serves its other records,
    each failing lookup answering DATABASE_UNAVAILABLE)."""
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
            offset, prefix, _network = native.locate(int(address), address.version)
            record, expected_prefix = reader.get_with_prefix_len(address)
            if prefix != expected_prefix or (offset is None) != (record is None):
                return f"where {address} is"
            if offset is None:
                continue
            if native.read(offset) != record:
                return f"the record of {address}"
            for lang in languages:
                if native.read_fields(offset, lang) != table.read_decoded(record, lang):
                    return f"the fields of {address} in {lang}"
    except Exception:  # noqa: BLE001 - whatever the file holds, checking it must not fail the load
        log.warning("mmdb_records could not be checked", exc_info=True)
    return None
