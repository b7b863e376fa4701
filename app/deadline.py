"""When an answer is due: a point on a monotonic clock, made when the request arrives and passed down.

A budget such as DNS_TIMEOUT bounds the whole answer, so it is counted from the request's arrival,
not from whenever a step happens to start: time spent waiting for a thread, for the GIL or for a
slot in the resolver pool is part of it. A step that finds its deadline passed does not start.
The clock is injectable so that tests can move time instead of waiting for it.
"""
from __future__ import annotations

import time
from typing import Callable

Clock = Callable[[], float]


class Deadline:
    __slots__ = ("at", "clock")

    def __init__(self, at: float, clock: Clock = time.monotonic):
        self.at = at
        self.clock = clock

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic, start: float | None = None) -> "Deadline":
        """`seconds` from `start` (a reading of `clock`; now when not given)."""
        return cls((clock() if start is None else start) + seconds, clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        return self.clock() >= self.at

    def at_most(self, seconds: float) -> "Deadline":
        """This deadline, or `seconds` from now if that comes first."""
        return Deadline(min(self.at, self.clock() + seconds), self.clock)

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"
