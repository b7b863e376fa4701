"""One updater at a time per database: an flock on a file beside it (released by the kernel if we die)."""
from __future__ import annotations

import fcntl
import os

from .errors import LockHeld


class UpdateLock:
    def __init__(self, live_path: str):
        self.path = live_path + ".lock"
        self._fd: int | None = None

    def acquire(self) -> "UpdateLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise LockHeld(f"another update of {os.path.basename(self.path[:-5])} is running{who}; not starting a second one") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "UpdateLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
