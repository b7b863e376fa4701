"""The overlay adapter: your own corrections, as RFC 8805 geofeed files (GEOIP_OVERLAY).

`Overlay.lookup(address)` answers the entry of the most specific prefix holding the address, or
None. The files (a list, or every `*.csv` in a directory) are read lazily on first use, so a uWSGI
master never reads them before fork, and every `check_interval` seconds one caller stats them: a
changed set (a file renamed over another, added, removed) is read and validated as a whole, and
goes live only when every file is good. A bad one leaves the previous overlay serving, with the
problems (file and line) kept for /readyz.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import threading
import time
from dataclasses import dataclass

from .geofeed import MAX_PROBLEMS, GeofeedError, OverlayEntry, Problem, read_geofeed
from .prefixes import PrefixTable

__all__ = ["Overlay", "OverlayEntry", "GeofeedError", "Problem", "expand_sources", "load_files"]


@dataclass(frozen=True)
class LoadedFile:
    path: str
    entries: int
    loaded_at: float  # epoch seconds


class _Live:
    __slots__ = ("table", "files", "signature", "version")

    def __init__(self, table: PrefixTable[OverlayEntry], files: tuple[LoadedFile, ...], signature, version: str):
        self.table = table
        self.files = files
        self.signature = signature
        self.version = version  # of the content: the same in every worker and replica with the same files


def expand_sources(sources) -> list[str]:
    """The files a GEOIP_OVERLAY list names: files as given, directories as their `*.csv` files
    (sorted; dot files and files being written, `*.tmp`, are not geofeeds)."""
    paths = []
    for source in sources:
        if os.path.isdir(source):
            paths.extend(sorted(entry.path for entry in os.scandir(source)
                                if entry.name.endswith(".csv") and not entry.name.startswith(".") and entry.is_file()))
        else:
            paths.append(source)
    return paths


def load_files(paths, *, wall_clock=time.time, digest=None) -> tuple[PrefixTable[OverlayEntry], tuple[LoadedFile, ...]]:
    """Read and validate every file; the same prefix in two files is a problem too (which one
    would win?). Raises GeofeedError with every file's problems. `digest` is fed every file's
    name and content."""
    problems: list[Problem] = []
    truncated = False
    seen: dict = {}
    entries: list[OverlayEntry] = []
    files = []
    for path in paths:
        if digest is not None:
            digest.update(os.path.basename(path).encode() + b"\0")
        try:
            found = read_geofeed(path, digest=digest)
        except GeofeedError as error:
            problems.extend(error.problems)
            truncated = truncated or error.truncated
            continue
        for entry in found:
            earlier = seen.get(entry.network)
            if earlier is not None:
                problems.append(Problem(path, entry.line, f"prefix {entry.prefix} is already given in {earlier}"))
                continue
            seen[entry.network] = f"{entry.file} line {entry.line}"
            entries.append(entry)
        files.append(LoadedFile(path, len(found), wall_clock()))
    if problems:
        raise GeofeedError(problems[:MAX_PROBLEMS], truncated=truncated or len(problems) > MAX_PROBLEMS)
    return PrefixTable((entry.network, entry) for entry in entries), tuple(files)


def _signature(paths) -> tuple:
    signature = []
    for path in paths:
        try:
            stat = os.stat(path)
            signature.append((path, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns))
        except OSError:
            signature.append((path, None))
    return tuple(signature)


_EMPTY: PrefixTable[OverlayEntry] = PrefixTable(())


class Overlay:
    def __init__(self, sources: tuple[str, ...] = (), check_interval: float = 0.5, clock=time.monotonic,
                 wall_clock=time.time):
        self.sources = tuple(sources)
        self.check_interval = check_interval
        self._clock = clock
        self._wall_clock = wall_clock
        self._live: _Live | None = None
        self._next_check = 0.0
        self._failed_signature = None
        self.problems: tuple[Problem, ...] = ()
        self.problems_truncated = False
        self.reloads = 0
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self.sources)

    def lookup(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> OverlayEntry | None:
        if not self.sources:
            return None
        if self._clock() >= self._next_check:
            self._refresh()
        live = self._live
        if live is None:
            return None  # no good overlay yet: the databases answer alone (and /readyz says why)
        return live.table.longest_match(address)

    def _refresh(self) -> None:
        # One thread checks; the others go on with the live overlay rather than wait (until there
        # is one: then they wait for the first read).
        if not self._lock.acquire(blocking=self._live is None):
            return
        try:
            if self._clock() < self._next_check:
                return
            self._next_check = self._clock() + self.check_interval
            paths = expand_sources(self.sources)
            signature = _signature(paths)
            if (self._live is not None and signature == self._live.signature) or signature == self._failed_signature:
                return
            digest = hashlib.blake2b(digest_size=12)
            try:
                table, files = load_files(paths, wall_clock=self._wall_clock, digest=digest)
            except GeofeedError as error:
                self._failed_signature = signature
                self.problems, self.problems_truncated = tuple(error.problems), error.truncated
                return
            # A file renamed over another while it was read is seen again at the next check.
            if _signature(paths) != signature:
                return
            self._live = _Live(table, files, signature, digest.hexdigest())
            self._failed_signature = None
            self.problems, self.problems_truncated = (), False
            self.reloads += 1
        finally:
            self._lock.release()

    def serving(self):
        """The live overlay (an identity: a new one on each load), checking the files when due;
        None when none is live."""
        if self.sources and self._clock() >= self._next_check:
            self._refresh()
        return self._live

    def version(self) -> tuple[int, str] | None:
        """(newest file's modification time, content digest) of the live overlay, or None."""
        if self.sources and self._clock() >= self._next_check:
            self._refresh()
        live = self._live
        if live is None:
            return None
        newest = max((int(entry[4] // 1_000_000_000) for entry in live.signature if entry[1] is not None), default=0)
        return newest, live.version

    def status(self) -> dict:
        """What /readyz reports: each live file's entries and load time, and why the files on
        disk are not live when they were refused."""
        if not self.sources:
            return {"configured": False, "loaded": False, "entries": 0, "files": [], "problems": []}
        if self._clock() >= self._next_check:
            self._refresh()
        live = self._live
        by_file: dict[str, list[str]] = {}
        for problem in self.problems:
            by_file.setdefault(problem.file, []).append(problem.message if problem.line is None
                                                          else f"line {problem.line}: {problem.message}")
        files = []
        for loaded in live.files if live else ():
            files.append({"path": loaded.path, "entries": loaded.entries,
                          "loaded_at": dt.datetime.fromtimestamp(loaded.loaded_at, dt.timezone.utc).isoformat(),
                          "problems": by_file.pop(loaded.path, [])})
        for path, messages in by_file.items():  # refused files that are not live at all
            files.append({"path": path, "entries": 0, "loaded_at": None, "problems": messages})
        return {"configured": True, "loaded": live is not None, "entries": len(live.table) if live else 0,
                "files": files, "problems": [str(problem) for problem in self.problems],
                "problems_truncated": self.problems_truncated}
