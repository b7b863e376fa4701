"""Where an address's record sits in a MaxMind DB, without decoding it: libmaxminddb's lookup.

The maxminddb C extension decodes the whole record (every language of every name) into new
Python objects on each `get`; that decode is most of a lookup's cost. Many networks share one
record (a city's, a country's), and a record's offset in the data section identifies it within
one file. Knowing the offset first lets the City adapter keep what callers derive from a record
and skip the decode when the same record comes back.

libmaxminddb's public C API is exported by the extension module itself (the wheel links the
library in), so the lookup goes through ctypes to `MMDB_open` / `MMDB_lookup_sockaddr` on our own
handle of the same file: the same pages in the page cache, no second copy. The structures below
are libmaxminddb's public, stable ABI (maxminddb.h). `open_locator` checks the answers against
the extension's own before anything relies on them, and returns None whenever it cannot be sure,
so the caller falls back to plain `get` calls.
"""
from __future__ import annotations

import ctypes
import ipaddress
import logging
import random
import socket
import sys
import threading

import maxminddb

log = logging.getLogger(__name__)

MMDB_MODE_MMAP = 1
MMDB_SUCCESS = 0
# struct sockaddr_in / sockaddr_in6 heads (family in host order, port 0, IPv6's flow info 0) and tails
_SOCKADDR_IN = socket.AF_INET.to_bytes(2, sys.byteorder) + bytes(2)
_SOCKADDR_IN6 = socket.AF_INET6.to_bytes(2, sys.byteorder) + bytes(6)
_ZEROS_8, _ZEROS_4 = bytes(8), bytes(4)
# Over-allocated: MMDB_s is a few hundred bytes; MMDB_open fills it, we never read it.
_MMDB_S_BYTES = 8192


class _LookupResult(ctypes.Structure):
    """MMDB_lookup_result_s: {bool found_entry; MMDB_entry_s {const MMDB_s *mmdb; uint32_t offset;}; uint16_t netmask;}
    with the nested entry flattened (same layout: the entry is 8-aligned and padded to 16 bytes)."""

    _fields_ = [("found_entry", ctypes.c_bool), ("mmdb", ctypes.c_void_p), ("offset", ctypes.c_uint32),
                ("_padding", ctypes.c_uint32), ("netmask", ctypes.c_uint16)]


_library = None
_library_lock = threading.Lock()


def _load_library():
    """The extension module as a C library, or None when it does not export libmaxminddb."""
    global _library
    with _library_lock:
        if _library is None:
            try:
                import maxminddb.extension as extension

                # PyDLL keeps the GIL: a lookup takes well under a microsecond, less than releasing
                # and taking the GIL back would.
                library = ctypes.PyDLL(extension.__file__)
                library.MMDB_open.argtypes = [ctypes.c_char_p, ctypes.c_uint32, ctypes.c_void_p]
                library.MMDB_open.restype = ctypes.c_int
                library.MMDB_close.argtypes = [ctypes.c_void_p]
                library.MMDB_close.restype = None
                library.MMDB_lookup_sockaddr.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                                         ctypes.POINTER(ctypes.c_int)]
                library.MMDB_lookup_sockaddr.restype = _LookupResult
                _library = library
            except (ImportError, OSError, AttributeError) as exc:
                log.info("record offsets unavailable (%s): City lookups decode every record", exc)
                _library = False
        return _library or None


class RecordLocator:
    """(offset, prefix length) of an address's record in one open file. Thread-safe: libmaxminddb
    lookups only read the shared handle."""

    def __init__(self, library, path: str, ip_version: int):
        self._library = library
        self._handle = ctypes.create_string_buffer(_MMDB_S_BYTES)
        status = library.MMDB_open(path.encode(), MMDB_MODE_MMAP, self._handle)
        if status != MMDB_SUCCESS:
            raise OSError(f"MMDB_open returned {status}")
        self._open = True
        self._lookup = library.MMDB_lookup_sockaddr
        # libmaxminddb gives an IPv4 address's prefix within the IPv6 tree; the extension (and
        # so every caller) counts it within IPv4.
        self._ipv4_shift = 96 if ip_version == 6 else 0
        self._error = ctypes.c_int()
        self._error_ref = ctypes.byref(self._error)

    def locate(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int | None, int]:
        """(offset or None when the tree has no record, prefix length), as the extension counts it."""
        if address.version == 4:
            sockaddr = _SOCKADDR_IN + address.packed + _ZEROS_8  # family (host order), port, address, zero
            shift = self._ipv4_shift
        else:
            sockaddr = _SOCKADDR_IN6 + address.packed + _ZEROS_4  # family, port, flow info, address, scope
            shift = 0
        result = self._lookup(self._handle, sockaddr, self._error_ref)
        if result.found_entry:  # libmaxminddb finds an entry only when the lookup succeeded
            return result.offset, result.netmask - shift
        # Not found or failed. The shared out-parameter may have been written by another thread
        # since (a PyDLL call holds the GIL, but the GIL can change hands after it returns): ask
        # again with one of our own to tell the two apart.
        error = ctypes.c_int()
        result = self._lookup(self._handle, sockaddr, ctypes.byref(error))
        if error.value != MMDB_SUCCESS:
            raise ValueError(f"libmaxminddb lookup error {error.value}")
        return None, result.netmask - shift

    def close(self) -> None:
        if self._open:
            self._open = False
            self._library.MMDB_close(self._handle)

    def __del__(self):
        # The City adapter drops a file version when no request holds it any more: nothing can be
        # mid-lookup on this handle by then.
        self.close()


def open_locator(path: str, reader, ip_version: int, samples: int = 256) -> RecordLocator | None:
    """A locator for `path` whose answers match `reader`'s (the extension's) on sample addresses,
    or None."""
    library = _load_library()
    if library is None:
        return None
    try:
        locator = RecordLocator(library, path, ip_version)
    except OSError as exc:
        log.warning("record offsets unavailable for %s: %s", path, exc)
        return None
    if not _agrees(locator, reader, ip_version, samples):
        log.warning("record offsets disagree with the maxminddb extension for %s: not used", path)
        locator.close()
        return None
    return locator


def _agrees(locator: RecordLocator, reader, ip_version: int, samples: int) -> bool:
    """Same found/not found and prefix as the extension on random addresses and on the first
    networks of the file, and one record per offset. False, never an exception, when the file
    cannot be read far enough to tell (a damaged data section still serves the other records
    through plain lookups, each failing one answering DATABASE_UNAVAILABLE)."""
    rng = random.Random(0)
    addresses = [ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(samples)]
    if ip_version == 6:
        # drawn from 2000::/4, the allocated unicast space, where records exist
        addresses += [ipaddress.IPv6Address((0x2 << 124) | rng.getrandbits(124)) for _ in range(samples // 4)]
    records: dict[int, object] = {}
    try:
        for count, (network, _record) in enumerate(reader):
            if count == samples:
                break
            addresses.append(network.network_address)
        for address in addresses:
            offset, prefix = locator.locate(address)
            record, expected_prefix = reader.get_with_prefix_len(address)
            if prefix != expected_prefix or (offset is None) != (record is None):
                return False
            if offset is not None and records.setdefault(offset, record) != record:
                return False
    except (ValueError, TypeError, OSError, maxminddb.InvalidDatabaseError):
        return False
    return True
