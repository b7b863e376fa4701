"""Lines of a binary stream with a bound on each line's length, so a file without line breaks
(garbage, a wrong file) is never held in memory whole."""
from __future__ import annotations

from typing import BinaryIO, Iterator


def bounded_lines(handle: BinaryIO, max_bytes: int) -> Iterator[bytes | None]:
    """Each line without its line break; None for a line longer than `max_bytes`, which is read
    past in pieces and not kept."""
    while True:
        line = handle.readline(max_bytes + 1)
        if not line:
            return
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = handle.readline(64 * 1024)
            yield None
            continue
        yield line.rstrip(b"\r\n")
