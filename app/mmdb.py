"""One MaxMind-format database file, memory-mapped per worker and swapped on rename: what the City
and ASN adapters (citydb.py, asndb.py) have in common. They add a kind, the database types they
accept and their field table (record_fields.py); the lookup service asks them its questions.

The file is opened lazily on first use, so a uWSGI master never maps it before fork. Every
`check_interval` seconds one caller stats the path; a new inode (the updater renames a complete
file over the old one) opens the new file and swaps it in. The old reader is never closed by
hand: requests in flight keep a reference, and the map is released when the last one drops it.
A file that disappears or fails to open leaves the last good map serving, with the error kept
for /readyz. Each database swaps on its own.

Workers map a private copy of each version, not the live file: a write into the live file's
inode (`cp garbage city.mmdb`, a truncation) would change pages under the map, and a read past
a truncated end is SIGBUS, which kills the worker. The copy is made once per version by the
first worker that sees it (in `copy_dir`, private to the service user) and shared by all
workers through the page cache, so memory is not multiplied.

The questions, in the spirit of echoip's geo.Reader:
- `lookup(address, lang)`: the hit (the table's values, the network, the file version) or None;
- its two halves, for a caller that keeps what it makes of a record: `locate(value, ip_version)` says where
  the address's record sits (`Located`: the version, the record's offset in that version's data
  section, the network) and `read(located, lang)` reads the hit there. (version, offset) names a
  record: the lookup service keys its caches on it, so a swap of this file invalidates only what
  came from this file.
An adapter keeps nothing of what it answered and never calls back into its caller.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

import maxminddb

from .errors import DatabaseUnavailable
from .record_fields import FieldTable
from .record_offsets import open_native_reader
from .targets import address_of


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


class Version:
    """One loaded version of the file: its readers and what identifies it. Opaque to callers,
    which may use it (by identity) in cache keys."""

    __slots__ = ("reader", "info", "signature", "native", "native_problem")

    def __init__(self, reader, info: DatabaseInfo, signature, native, native_problem: str | None):
        self.reader = reader
        self.info = info
        self.signature = signature
        self.native = native                  # an mmdb_records.OffsetReader on the same copy, or None
        self.native_problem = native_problem  # why not, when it is None


class Located(NamedTuple):
    """Where an address's record sits in one version of the file."""
    version: Version
    record: int | None   # the record's offset in the data section; None without the native reader
    network: str         # the network the file answers with, e.g. "81.2.69.0/24"
    decoded: dict | None  # the decoded record, without the native reader


_new = tuple.__new__  # Located(...) is a Python-level __new__; tuple.__new__(Located, values) is C
def _signature(stat: os.stat_result):
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def default_copy_dir() -> str:
    return os.path.join(tempfile.gettempdir(), f"easy-geoip-{os.getuid()}")


class MmdbDatabase:
    kind = "MaxMind DB"   # "City", "ASN": in messages and /readyz
    table: FieldTable

    @staticmethod
    def accepts(database_type: str) -> bool:
        raise NotImplementedError

    def __init__(self, path: str, check_interval: float = 0.5, clock=time.monotonic, copy_dir: str | None = None):
        self.path = path
        self.check_interval = check_interval
        self.copy_dir = copy_dir or default_copy_dir()
        # Copies of different live paths never collide, whoever shares the directory.
        self._copy_prefix = (self.kind.lower() + "-"
                             + hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:12])
        self._clock = clock
        self._loaded: Version | None = None
        self._next_check = 0.0
        self._failed_signature = None
        self.last_error: str | None = None
        self.reloads = 0
        self.load_failures = 0  # file versions that could not be opened (each counted once)
        self._lock = threading.Lock()
        self._make = self.table.make
        self._count = len(self.table.fields)

    # -- the questions ---------------------------------------------------------------------
    def lookup(self, address, lang: str = "en"):
        """The table's hit for the address (its values, `network`, `version`), or None."""
        located = self.locate(int(address), address.version)
        return None if located is None else self.read(located, lang)

    def locate(self, value: int, ip_version: int, text: str | None = None) -> Located | None:
        """Where the record of the address `value` (its integer; `ip_version` 4 or 6) sits, or None
        when the file has no record for it (an IPv6 address in an IPv4 file has none).

        `text`, the address's canonical text when the caller has it, spares a conversion on the
        path without the native reader. DatabaseUnavailable when no version is loaded or the
        file's data is damaged."""
        loaded = self._loaded  # the common case, without a call: loaded and not due for a check
        if loaded is None or self._clock() >= self._next_check:
            loaded = self._current()
            if loaded is None:
                raise DatabaseUnavailable(f"The {self.kind} database is not loaded.")
        if ip_version == 6 and loaded.info.ip_version == 4:
            return None
        native = loaded.native
        try:
            if native is None:
                record, prefix_len = loaded.reader.get_with_prefix_len(text or address_of(value, ip_version))
                if record is None:
                    return None
                return _new(Located, (loaded, None, network_text(value, ip_version, prefix_len), record))
            offset, prefix_len, network = native.locate(value, ip_version)
        except (maxminddb.InvalidDatabaseError, ValueError):
            raise self._damaged() from None
        if offset is None:
            return None
        if network is None:  # the forms ipaddress writes its own way (::ffff:a.b.c.d)
            network = network_text(value, ip_version, prefix_len)
        return _new(Located, (loaded, offset, network, None))

    def read(self, located: Located, lang: str = "en"):
        """The hit at a located record (of the version it was located in), names in `lang`."""
        version = located.version
        try:
            if located.decoded is not None:
                values = self.table.read_decoded(located.decoded, lang)
            else:
                values = version.native.read_fields(located.record, lang)
        except ValueError:
            raise self._damaged() from None
        return self._make(values + (located.network, version))

    def record(self, address) -> tuple[dict, str] | None:
        """(the whole decoded record, network) or None: for the MaxMind-compatible answer, which
        carries every language."""
        located = self.locate(int(address), address.version)
        if located is None:
            return None
        if located.decoded is not None:
            return located.decoded, located.network
        try:
            record = located.version.reader.get(address)
        except (maxminddb.InvalidDatabaseError, ValueError):
            raise self._damaged() from None
        return (record, located.network) if record is not None else None

    # -- what /readyz says ------------------------------------------------------------------
    @property
    def info(self) -> DatabaseInfo | None:
        loaded = self._current()
        return loaded.info if loaded else None

    def serving(self) -> Version | None:
        """The version serving now, without checking the file."""
        return self._loaded

    def current(self) -> Version | None:
        """The version serving now, opening or checking the file when due (as a lookup does)."""
        return self._current()

    def reader_status(self) -> dict:
        """Whether records are read in C (mmdb_records) and, when not, why: a problem to report."""
        loaded = self._loaded
        if loaded is None:
            return {"native": None, "problem": None}
        return {"native": loaded.native is not None, "problem": loaded.native_problem}

    # -- loading -----------------------------------------------------------------------------
    def _current(self) -> Version | None:
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
            if self._clock() < self._next_check:  # checked meanwhile (a missing file too)
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
            self.last_error = f"{self.kind} database file is missing or unreadable ({exc.strerror})"
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
            reader, info = self.open_reader(copy)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            self._failed_signature = signature
            self.load_failures += 1
            self.last_error = f"{self.kind} database file could not be opened: {exc}"
            return True
        native, problem = open_native_reader(copy, reader, info.ip_version, self.table)
        self._loaded = Version(reader, info, signature, native, problem)
        self._remove_other_copies(copy)
        self._failed_signature = None
        self.last_error = None
        self.reloads += 1
        return True

    @classmethod
    def open_reader(cls, path: str):
        """Open and check a file of this kind; raises ValueError with a readable reason."""
        reader = maxminddb.open_database(path, maxminddb.MODE_MMAP_EXT)
        meta = reader.metadata()
        if not cls.accepts(meta.database_type):
            reader.close()
            raise ValueError(f"not {_article(cls.kind)} {cls.kind} database (database_type is {meta.database_type!r})")
        info = DatabaseInfo(path=path, database_type=meta.database_type, build_epoch=meta.build_epoch,
                            ip_version=meta.ip_version, node_count=meta.node_count, languages=tuple(meta.languages))
        return reader, info

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

    def _damaged(self) -> DatabaseUnavailable:
        self.last_error = f"{self.kind} database file is damaged: a lookup could not be decoded"
        return DatabaseUnavailable(f"The {self.kind} database could not answer for this address.")


def _article(word: str) -> str:
    return "an" if word[:1] in "AEIOU" else "a"


_SLASH_PREFIX = tuple(f"/{length}" for length in range(129))


def network_text(value: int, ip_version: int, prefix_len: int) -> str:
    """"a.b.c.0/24" for an address (its integer and IP version) and its prefix length, without
    building a network object."""
    if ip_version == 4:  # every lookup: the short way
        shift = 32 - prefix_len
        return socket.inet_ntoa((value >> shift << shift).to_bytes(4, "big")) + _SLASH_PREFIX[prefix_len]
    shift = 128 - prefix_len
    network = value >> shift << shift
    text = socket.inet_ntop(socket.AF_INET6, network.to_bytes(16, "big"))
    if "." in text:  # inet_ntop's ::ffff:a.b.c.d; keep ipaddress's form
        text = str(ipaddress.IPv6Address(network))
    return text + _SLASH_PREFIX[prefix_len]
