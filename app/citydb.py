"""The City database adapter: one memory-mapped maxminddb reader per worker, swapped on rename.

The file is opened lazily on first use, so a uWSGI master never maps it before fork. Every
`check_interval` seconds one caller stats the path; a new inode (the updater renames a complete
file over the old one) opens the new file and swaps it in. The old reader is never closed by
hand: requests in flight keep a reference, and the map is released when the last one drops it.
A file that disappears or fails to open leaves the last good map serving, with the error kept
for /readyz.

Workers map a private copy of each version, not the live file: a write into the live file's
inode (`cp garbage city.mmdb`, a truncation) would change pages under the map, and a read past
a truncated end is SIGBUS, which kills the worker. The copy is made once per version by the
first worker that sees it (in `copy_dir`, private to the service user) and shared by all
workers through the page cache, so memory is not multiplied.

Decoding a record is most of a lookup's cost, and many networks share one record. `derive` finds
the record's offset first (record_offsets.py) and keeps what the caller derives from the record,
per offset and language, in a bounded LRU that belongs to the file version: a swap starts an empty
one. A record not kept yet is read at its offset, as CityFields (city_fields.py) in that language.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import hashlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, TypeVar

import maxminddb

from .city_fields import CityFields, city_fields
from .errors import DatabaseUnavailable
from .record_offsets import open_offset_reader

T = TypeVar("T")


@dataclass(frozen=True)
class DatabaseInfo:
    path: str
    database_type: str
    build_epoch: int
    ip_version: int
    node_count: int
    languages: tuple[str, ...]

    @property
    def build_date(self) -> str:
        return dt.datetime.fromtimestamp(self.build_epoch, dt.timezone.utc).date().isoformat()

    def age_days(self, now: float | None = None) -> float:
        return round(((now or time.time()) - self.build_epoch) / 86400, 1)

    @property
    def source(self) -> str:
        kind = self.database_type.lower()
        if "dbip" in kind or "db-ip" in kind:
            return "dbip"
        if kind.startswith(("geoip2", "geolite2")):
            return "maxmind"
        return "other"


class _Loaded:
    """A reader together with what identifies the file it came from."""

    __slots__ = ("reader", "info", "signature", "offsets", "derived")

    def __init__(self, reader, info: DatabaseInfo, signature, offsets=None):
        self.reader = reader
        self.info = info
        self.signature = signature
        self.offsets = offsets  # an mmdb_records.OffsetReader on the same file, or None
        self.derived: OrderedDict = OrderedDict()


def open_city_reader(path: str):
    """Open and check a City database; raises ValueError with a readable reason."""
    reader = maxminddb.open_database(path, maxminddb.MODE_MMAP_EXT)
    meta = reader.metadata()
    if "city" not in meta.database_type.lower():
        reader.close()
        raise ValueError(f"not a City database (database_type is {meta.database_type!r})")
    info = DatabaseInfo(
        path=path,
        database_type=meta.database_type,
        build_epoch=meta.build_epoch,
        ip_version=meta.ip_version,
        node_count=meta.node_count,
        languages=tuple(meta.languages),
    )
    return reader, info


def _signature(stat: os.stat_result):
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def default_copy_dir() -> str:
    return os.path.join(tempfile.gettempdir(), f"easy-geoip-{os.getuid()}")


_DAMAGED = "City database file is damaged: a lookup could not be decoded"


class CityDatabase:
    def __init__(self, path: str, check_interval: float = 0.5, clock=time.monotonic, copy_dir: str | None = None,
                 record_cache_size: int = 5120):
        self.path = path
        self.record_cache_size = record_cache_size
        self.check_interval = check_interval
        self.copy_dir = copy_dir or default_copy_dir()
        # Copies of different live paths never collide, whoever shares the directory.
        self._copy_prefix = "city-" + hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:12]
        self._clock = clock
        self._loaded: _Loaded | None = None
        self._next_check = 0.0
        self._failed_signature = None
        self.last_error: str | None = None
        self.reloads = 0
        self.record_hits = self.record_misses = 0  # counted without a lock: approximate under threads
        self._lock = threading.Lock()

    def _current(self) -> _Loaded | None:
        # Until a map is loaded every caller goes through _refresh (and waits on the lock there):
        # otherwise the threads arriving while the first one opens the file would see no map.
        if self._loaded is None or self._clock() >= self._next_check:
            self._refresh()
        return self._loaded

    def _refresh(self) -> None:
        # One thread checks; the others keep using the current map rather than wait.
        if not self._lock.acquire(blocking=self._loaded is None):
            return
        try:
            if self._clock() < self._next_check and self._loaded is not None:
                return
            self._next_check = self._clock() + self.check_interval
            # A file renamed over the path while it is copied is tried again at the next check;
            # with nothing loaded yet there is no map to serve meanwhile, so try again at once.
            for _attempt in range(1 if self._loaded is not None else 5):
                if self._load_current_file():
                    return
        finally:
            self._lock.release()

    def _load_current_file(self) -> bool:
        """Swap in the file at `path` if it is new and opens; False only when it changed while
        being copied (worth an immediate retry)."""
        try:
            signature = _signature(os.stat(self.path))
        except OSError as exc:
            self.last_error = f"City database file is missing or unreadable ({exc.strerror})"
            return True
        if self._loaded is not None and signature == self._loaded.signature:
            self.last_error = None
            return True
        if signature == self._failed_signature:
            return True
        try:
            copy = self._private_copy(signature)
            if copy is None:
                return False
            reader, info = open_city_reader(copy)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            self._failed_signature = signature
            self.last_error = f"City database file could not be opened: {exc}"
            return True
        offsets = open_offset_reader(copy, reader, info.ip_version) if self.record_cache_size > 0 else None
        self._loaded = _Loaded(reader, info, signature, offsets)
        self._remove_other_copies(copy)
        self._failed_signature = None
        self.last_error = None
        self.reloads += 1
        return True

    def _private_copy(self, signature) -> str | None:
        """The path of this version's private copy, made now unless another worker made it."""
        _dev, inode, size, mtime_ns = signature
        copy = os.path.join(self.copy_dir, f"{self._copy_prefix}-{inode}-{size}-{mtime_ns}.mmdb")
        if os.path.exists(copy):
            return copy
        os.makedirs(self.copy_dir, mode=0o700, exist_ok=True)
        temporary = f"{copy}.{os.getpid()}-{threading.get_ident()}.tmp"
        try:
            shutil.copyfile(self.path, temporary)  # sendfile: about 0.1 s for 100 MB
            if _signature(os.stat(self.path)) != signature:
                return None
            try:
                # link, not rename: when workers race, the first copy wins and every worker maps
                # that one inode (a rename would leave the early ones on copies of their own).
                os.link(temporary, copy)
            except FileExistsError:
                pass
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return copy

    def _remove_other_copies(self, keep: str) -> None:
        # Workers still on an older copy keep their map after the unlink; the space returns
        # when the last of them moves on.
        for entry in os.scandir(self.copy_dir):
            if entry.name.startswith(self._copy_prefix) and entry.path != keep and not entry.name.endswith(".tmp"):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass

    @property
    def info(self) -> DatabaseInfo | None:
        loaded = self._current()
        return loaded.info if loaded else None

    def cache_info(self) -> dict:
        """The record cache of the version serving now (for /readyz and the bench)."""
        loaded = self._loaded
        return {"enabled": loaded is not None and loaded.offsets is not None,
                "entries": len(loaded.derived) if loaded else 0, "capacity": self.record_cache_size,
                "hits": self.record_hits, "misses": self.record_misses}

    def get(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str | None = None):
        """(record or None, network string, DatabaseInfo) for one address.

        `text`, the address's canonical text when the caller has it, spares the reader a
        conversion (it parses a string in C faster than it reads an ipaddress object's bytes)."""
        loaded = self._loaded_now()
        if not _holds(loaded, address):
            return None, None, loaded.info
        record, prefix_len = self._read(loaded.reader.get_with_prefix_len, text or address)
        return record, network_text(address, prefix_len), loaded.info

    def derive(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str | None,
               derive: Callable[[CityFields], T], lang: str) -> tuple[T | None, str | None, DatabaseInfo]:
        """(derive(the record's CityFields in `lang`) or None, network string, DatabaseInfo).
        (From mmdb_records the fields come as a plain tuple in CityFields' order.)

        `derive` must depend on nothing but its argument: its result is kept per record and
        language while this file version serves (and shared by every caller: never mutate it)."""
        loaded = self._loaded_now()
        if not _holds(loaded, address):
            return None, None, loaded.info
        offsets = loaded.offsets
        if offsets is None:
            record, prefix_len = self._read(loaded.reader.get_with_prefix_len, text or address)
            value = None if record is None else derive(city_fields(record, lang))
            return value, network_text(address, prefix_len), loaded.info
        cache = loaded.derived
        try:
            offset, prefix_len, network = offsets.locate(int(address), address.version)
            if network is None:  # the forms ipaddress writes its own way (::ffff:a.b.c.d)
                network = network_text(address, prefix_len)
            if offset is None:
                return None, network, loaded.info
            key = (offset, lang)
            value = cache.get(key)
            fields = offsets.read_fields(offset, lang) if value is None else None
        except ValueError:
            raise self._damaged() from None
        if value is None:
            self.record_misses += 1
            value = cache[key] = derive(fields)
            if len(cache) > self.record_cache_size:
                try:
                    cache.popitem(last=False)
                except KeyError:  # emptied by another thread meanwhile
                    pass
        else:
            self.record_hits += 1
            try:
                cache.move_to_end(key)
            except KeyError:  # evicted by another thread meanwhile; the value is still good
                pass
        return value, network, loaded.info

    def _loaded_now(self) -> _Loaded:
        loaded = self._loaded  # the common case, without a call: loaded and not due for a check
        if loaded is None or self._clock() >= self._next_check:
            loaded = self._current()
            if loaded is None:
                raise DatabaseUnavailable()
        return loaded

    def _read(self, read, key):
        """One call of the extension (`get` or `get_with_prefix_len`); a damaged file answers unavailable."""
        try:
            return read(key)
        except (maxminddb.InvalidDatabaseError, ValueError):
            raise self._damaged() from None

    def _damaged(self) -> DatabaseUnavailable:
        self.last_error = _DAMAGED
        return DatabaseUnavailable("The City database could not answer for this address.")


def _holds(loaded: _Loaded, address) -> bool:
    """An IPv4-only file has no record for an IPv6 address (and the reader would refuse it)."""
    return address.version == 4 or loaded.info.ip_version == 6


_SLASH_PREFIX = tuple(f"/{length}" for length in range(129))


def network_text(address, prefix_len: int) -> str:
    """"a.b.c.0/24" for an address and its prefix length, without building a network object."""
    if address.version == 4:  # every lookup: the short way
        shift = 32 - prefix_len
        return socket.inet_ntoa((int(address) >> shift << shift).to_bytes(4, "big")) + _SLASH_PREFIX[prefix_len]
    shift = 128 - prefix_len
    network = int(address) >> shift << shift
    text = socket.inet_ntop(socket.AF_INET6, network.to_bytes(16, "big"))
    if "." in text:  # inet_ntop's ::ffff:a.b.c.d; keep ipaddress's form
        text = str(ipaddress.IPv6Address(network))
    return text + _SLASH_PREFIX[prefix_len]
