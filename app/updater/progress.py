"""Download progress: a bar (bytes, rate, ETA) on a terminal, a few one-line log records otherwise."""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Protocol

log = logging.getLogger("app.updater")


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...
    def advance(self, count: int) -> None: ...
    def finish(self) -> None: ...


class BarProgress:
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bar = None

    def start(self, label: str, total: int | None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024,
                        file=self.stream, leave=True, ncols=_columns(self.stream))

    def advance(self, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (OSError, ValueError, AttributeError):
        return 80


class LogProgress:
    """One record at start, at each quarter (or every 30 s without a known size), and at the end."""

    def __init__(self, logger: logging.Logger = log, every: float = 30.0):
        self.logger = logger
        self.every = every

    def start(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done = label, total, 0
        self.began = self.last_report = time.monotonic()
        self.next_quarter = 1
        self.logger.info("downloading %s (%s)", label, _size(total) if total else "size unknown")

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.total:
            if self.next_quarter < 4 and self.done * 4 >= self.total * self.next_quarter:
                self.next_quarter = self.done * 4 // self.total + 1
                self._report(now)
        elif now - self.last_report >= self.every:
            self._report(now)

    def _report(self, now: float) -> None:
        self.last_report = now
        rate = self.done / max(now - self.began, 1e-6)
        share = f"{100 * self.done // self.total}%, " if self.total else ""
        self.logger.info("downloading %s: %s%s at %s/s", self.label, share, _size(self.done), _size(rate))

    def finish(self) -> None:
        elapsed = time.monotonic() - self.began
        self.logger.info("downloaded %s: %s in %.1f s", self.label, _size(self.done), elapsed)


def progress_for(stream=None) -> Progress:
    stream = stream or sys.stderr
    return BarProgress(stream) if stream.isatty() else LogProgress()


def _size(count: float | None) -> str:
    count = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
