"""What the updater remembers beside the database: last check, last success, where the file came from.

Read by `--if-older-than`, the conditional GETs and `cli.py status`. Written atomically; a missing
or unreadable state file just means "never checked".
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields


class JsonStateFile:
    """A dataclass kept as JSON beside a live database (`<db><SUFFIX>`), written atomically; keys it
    does not know are ignored, and a missing or unreadable file loads as the defaults."""

    SUFFIX = ""

    @classmethod
    def path_for(cls, live_path: str) -> str:
        return live_path + cls.SUFFIX

    @classmethod
    def load(cls, live_path: str):
        data = read_json_object(cls.path_for(live_path))
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def save(self, live_path: str) -> None:
        write_json_atomically(self.path_for(live_path), asdict(self))


@dataclass
class UpdateState(JsonStateFile):
    last_check: float | None = None          # when the last attempt finished, whatever its outcome
    last_outcome: str | None = None          # updated | current | failed
    last_error: str | None = None
    last_success: float | None = None        # last check that ended updated or current
    source: str | None = None                # source of the live file: maxmind | dbip | url | file | snapshot
    source_detail: str | None = None         # edition, URL (without credentials) or path
    fallback: bool = False                   # the live file came from a fallback source
    md5: str | None = None
    build_epoch: int | None = None
    installed_at: float | None = None
    validators: dict = field(default_factory=dict)  # {"url", "etag", "last_modified"} of the live file
    previous: dict = field(default_factory=dict)    # the ORIGIN_FIELDS of the file kept as .previous
    live_signature: list = field(default_factory=list)  # [inode, size, mtime_ns] of the file `md5` belongs to

    SUFFIX = ".state.json"
    ORIGIN_FIELDS = ("source", "source_detail", "fallback", "md5", "build_epoch", "installed_at", "validators")

    @staticmethod
    def signature_of(path: str) -> list:
        stat = os.stat(path)
        return [stat.st_ino, stat.st_size, stat.st_mtime_ns]

    def known_md5(self, path: str) -> str | None:
        """The recorded md5 if the file is still the one it was computed for (saves reading 100 MB)."""
        try:
            return self.md5 if self.md5 and self.live_signature == self.signature_of(path) else None
        except OSError:
            return None

    def origin(self) -> dict:
        return {name: getattr(self, name) for name in self.ORIGIN_FIELDS}

    def set_origin(self, origin: dict) -> None:
        """Fields missing from `origin` go back to their defaults (unknown)."""
        blank = type(self)()
        for name in self.ORIGIN_FIELDS:
            setattr(self, name, origin.get(name, getattr(blank, name)))


def read_json_object(path: str) -> dict:
    """The JSON object in path; {} when it is missing, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_atomically(target: str, data: dict) -> None:
    """Readers see the old content or the new, never a half-written file."""
    directory = os.path.dirname(os.path.abspath(target))
    handle, temporary = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
