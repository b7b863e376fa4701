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


def line_blocks(handle: BinaryIO, block_bytes: int, max_bytes: int) -> Iterator[bytes]:
    """The stream in blocks of whole lines, each block ending in a line break and holding about
    `block_bytes` (at most `block_bytes + max_bytes + 1`), for a reader that splits them itself.
    A line longer than `max_bytes` that does not fit a block is cut to `max_bytes + 1` bytes
    (still too long where it is split off) and the rest of it is read past without being kept;
    a last line without a line break gets one."""
    read = getattr(handle, "read1", handle.read)  # what is there: a line from a pipe is not held back
    carry = b""
    skipping = False  # inside an overlong line's rest
    while True:
        data = read(block_bytes)
        if not data:
            break
        if skipping:
            newline = data.find(b"\n")
            if newline < 0:
                continue
            data, skipping = data[newline + 1:], False
        data = carry + data if carry else data
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) > max_bytes:
                yield data[: max_bytes + 1] + b"\n"
                carry, skipping = b"", True
            else:
                carry = data
            continue
        carry = data[end + 1:]
        if len(carry) > max_bytes:
            yield data[: end + 1] + carry[: max_bytes + 1] + b"\n"
            carry, skipping = b"", True
        else:
            yield data[: end + 1]
    if carry:
        yield carry + b"\n"


def line_text(line: bytes | None) -> str | None:
    """A line (without its line break) as text: None when it is unreadable (None, or not UTF-8)."""
    if line is None:
        return None
    try:
        return line.rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError:
        return None
