"""Put a verified file in place atomically, keep the one it replaces, and roll back to it.

Workers notice a new inode at the live path and re-open it; a rename never shows them a half-written
file, and the old inode lives on (as `.previous` and in their maps) until they let go of it.
"""
from __future__ import annotations

import glob
import os
import tempfile

from .errors import NothingToRollBack

STAGING_SUFFIX = ".tmp"


def previous_path(live_path: str) -> str:
    return live_path + ".previous"


def staging_file(live_path: str, purpose: str) -> str:
    """A new empty file beside the live one (same file system, so the rename is atomic)."""
    directory, name = os.path.split(os.path.abspath(live_path))
    handle, path = tempfile.mkstemp(prefix=f".{name}.{purpose}.", suffix=STAGING_SUFFIX, dir=directory)
    os.close(handle)
    return path


def remove_quietly(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def remove_stale_staging(live_path: str) -> list[str]:
    """Temporaries left by an updater that was killed; call only while holding the update lock."""
    directory, name = os.path.split(os.path.abspath(live_path))
    stale = glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(name)}.*{STAGING_SUFFIX}"))
    for path in stale:
        remove_quietly(path)
    return stale


def install(candidate_path: str, live_path: str) -> None:
    """Rename candidate over live_path; the replaced file becomes `.previous`."""
    os.chmod(candidate_path, 0o644)  # mkstemp made it 0600; workers may run as another user
    _fsync_file(candidate_path)
    if os.path.exists(live_path):
        _link_as(live_path, previous_path(live_path))
    os.replace(candidate_path, live_path)
    _fsync_dir(live_path)


def rollback(live_path: str) -> None:
    """Swap the live file and `.previous` (so a second rollback undoes the first)."""
    previous = previous_path(live_path)
    if not os.path.exists(previous):
        raise NothingToRollBack(f"there is no previous database ({previous}) to roll back to")
    if os.path.exists(live_path):
        keep = staging_file(live_path, "rollback")
        os.unlink(keep)
        os.link(live_path, keep)
        os.replace(previous, live_path)
        os.replace(keep, previous)
    else:
        os.replace(previous, live_path)
    _fsync_dir(live_path)


def _link_as(existing: str, target: str) -> None:
    """Give `existing`'s inode the name `target`, replacing whatever had it, never leaving it missing."""
    temporary = staging_file(existing, "link")
    os.unlink(temporary)
    try:
        os.link(existing, temporary)
    except OSError:  # file systems without hard links: a copy does
        import shutil

        shutil.copy2(existing, temporary)
    os.replace(temporary, target)


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a directory; the rename itself is still atomic
        pass
    finally:
        os.close(fd)
