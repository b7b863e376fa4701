"""Turn what a source gave (.mmdb, .mmdb.gz, .tar.gz with an .mmdb inside, or a wheel) into a
plain .mmdb file, refusing archives that are corrupt, truncated or expand without bound.

The format is read from the first bytes, never from a name: a URL need not end in ".gz".
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import zipfile
import zlib
from dataclasses import dataclass

from .errors import InvalidDatabase

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
CHUNK = 1 << 20
# A City .mmdb compresses 2-4x; a gzip bomb 100-1000x. Past the floor, more than this ratio is refused.
MAX_RATIO = 20
RATIO_FLOOR = 16 << 20


@dataclass(frozen=True)
class Unpacked:
    md5: str | None  # None for a bare .mmdb: verify.py hashes it while the reader checks it
    size: int
    member: str | None  # name of the .mmdb inside an archive


class _Counting(io.RawIOBase):
    """Counts what is read through it, so the expansion of the layer above can be bounded."""

    def __init__(self, raw):
        self.raw = raw
        self.count = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


class _Bounded(io.RawIOBase):
    """Decompressed bytes, refused once they exceed max_bytes or MAX_RATIO times the compressed input."""

    def __init__(self, inner, compressed: _Counting | None, max_bytes: int):
        self.inner = inner
        self.compressed = compressed
        self.max_bytes = max_bytes
        self.count = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.inner.read(len(buffer))
        self.count += len(data)
        if self.count > self.max_bytes:
            raise InvalidDatabase(f"the archive expands to more than {self.max_bytes} bytes: refused")
        if self.compressed is not None and self.count > RATIO_FLOOR and self.count > MAX_RATIO * max(self.compressed.count, 1):
            raise InvalidDatabase("the archive expands more than any database does (a gzip bomb?): refused")
        buffer[: len(data)] = data
        return len(data)


def unpack(raw_path: str, dest_path: str, max_bytes: int) -> Unpacked:
    """Write the .mmdb held in raw_path to dest_path (a new file); return its size (and md5 when
    computed on the way)."""
    try:
        with open(raw_path, "rb") as raw:
            magic = raw.read(4)
            raw.seek(0)
            if not magic:
                raise InvalidDatabase("the file is empty")
            if magic.startswith(GZIP_MAGIC):
                return _from_gzip(raw, dest_path, max_bytes)
            if magic == ZIP_MAGIC:
                return _from_zip(raw, dest_path, max_bytes)
        return _copy_plain(raw_path, dest_path, max_bytes)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InvalidDatabase(f"the archive is corrupt or truncated ({_first_line(exc)})") from None
    except tarfile.TarError as exc:
        raise InvalidDatabase(f"the tar archive is corrupt or truncated ({_first_line(exc)})") from None
    except zipfile.BadZipFile as exc:
        raise InvalidDatabase(f"the zip archive is corrupt ({_first_line(exc)})") from None


def _from_gzip(raw, dest_path: str, max_bytes: int) -> Unpacked:
    compressed = _Counting(raw)
    stream = io.BufferedReader(_Bounded(gzip.GzipFile(fileobj=io.BufferedReader(compressed)), compressed, max_bytes * 2), CHUNK)
    head = stream.peek(512)[:512]
    if len(head) >= 262 and head[257:262] == b"ustar":
        return _from_tar(stream, dest_path, max_bytes)
    return _copy(stream, dest_path, max_bytes, None)


def _from_tar(stream, dest_path: str, max_bytes: int) -> Unpacked:
    # Streaming mode: members are read in order, nothing is extracted to disk but the one .mmdb.
    with tarfile.open(fileobj=stream, mode="r|") as archive:
        for member in archive:
            if member.isfile() and member.name.endswith(".mmdb"):
                if member.size > max_bytes:
                    raise InvalidDatabase(f"{member.name} in the archive is {member.size} bytes, more than the {max_bytes} allowed")
                return _copy(archive.extractfile(member), dest_path, max_bytes, member.name)
    raise InvalidDatabase("the tar archive holds no .mmdb file")


def _from_zip(raw, dest_path: str, max_bytes: int) -> Unpacked:
    with zipfile.ZipFile(raw) as archive:
        members = [info for info in archive.infolist() if info.filename.endswith(".mmdb") and not info.is_dir()]
        if len(members) != 1:
            raise InvalidDatabase(f"the zip archive holds {len(members)} .mmdb files, expected one")
        member = members[0]
        if member.file_size > max_bytes or member.file_size > MAX_RATIO * max(member.compress_size, 1) + RATIO_FLOOR:
            raise InvalidDatabase(f"{member.filename} in the archive expands too much: refused")
        with archive.open(member) as source:
            return _copy(source, dest_path, max_bytes, member.filename)


def _copy_plain(raw_path: str, dest_path: str, max_bytes: int) -> Unpacked:
    """A bare .mmdb: a kernel-side copy (sendfile) is several times faster than a read/write loop."""
    size = os.path.getsize(raw_path)
    if size > max_bytes:
        raise InvalidDatabase(f"the database is larger than the {max_bytes} bytes allowed")
    shutil.copyfile(raw_path, dest_path)
    return Unpacked(None, size, None)


def _copy(source, dest_path: str, max_bytes: int, member: str | None) -> Unpacked:
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(dest_path, "wb") as out:
        while chunk := source.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise InvalidDatabase(f"the database is larger than the {max_bytes} bytes allowed")
            digest.update(chunk)
            out.write(chunk)
    if size == 0:
        raise InvalidDatabase("the database file is empty")
    return Unpacked(digest.hexdigest(), size, member)


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]
