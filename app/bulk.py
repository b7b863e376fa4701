"""Bulk enrichment (`cli.py lookup --file F`): targets from a file or stdin, one per line or one
column of a CSV, looked up in order and written as JSON Lines or CSV.

Memory stays flat for input of any size: the input is read in blocks of whole lines
(BLOCK_BYTES, each line bounded by MAX_LINE_BYTES), and each block's output is written before
more input is read than the few blocks in flight. With `jobs` > 1 the blocks go to that many
worker processes (each with its own services, built after the fork), which write their output
to the output file themselves, in input order (OrderedWrites). In a block, JSON Lines of public
IPv4 addresses come from per-record templates (app/lookup_json.py); every other line goes
through the lookup service's batch path CHUNK_LINES at a time (IP addresses at once, a chunk's
domain names concurrently within one shared DNS budget, exactly like an HTTP batch). One output line per input line: a line that is not a
target (bad UTF-8, too long, empty) gets its error object like any failed lookup.
"""
from __future__ import annotations

import collections
import concurrent.futures
import csv
import ctypes
import io
import itertools
import multiprocessing
import os
import time
from stat import S_ISREG
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterator

import orjson

from .lookup_json import SerializedLookups
from .fields import DOCUMENT_PATHS, Selection, allowed_paths, parse_fields, select_items
from .textlines import line_blocks, line_text

FORMATS = ("jsonl", "csv")
CHUNK_LINES = 1000      # lines per batch of the lookup service's batch path (one DNS budget)
BLOCK_BYTES = 64 * 1024  # input per block handed to a lookup process
MAX_LINE_BYTES = 4096
# What a CSV row holds when --fields does not say: the columns most log enrichment wants.
DEFAULT_CSV_FIELDS = ("ip,network,city.name,subdivisions.iso_code,country.iso_code,continent.code,postal.code,"
                      "location,timezone.name")


@dataclass(frozen=True)
class BulkOptions:
    format: str = "jsonl"
    column: str | None = None           # a CSV column: its header name, or its 1-based number
    selection: Selection | None = None  # parse_fields(--fields)
    lang: str = "en"
    jobs: int = 1
    hostname: bool = False              # add each result's PTR name (within each chunk's DNS budget)


@dataclass
class BulkReport:
    lines: int = 0
    failed: int = 0       # lines whose item is an error
    addresses: int = 0    # located results written


class InputError(ValueError):
    """The input cannot be read as asked (a CSV column that is not there)."""


# -- input ----------------------------------------------------------------------------------
def split_block(block: bytes) -> list[bytes | None]:
    """A block's lines without their line breaks (None for one longer than MAX_LINE_BYTES)."""
    lines = block.split(b"\n")
    lines.pop()  # after the block's last line break
    return [None if len(line) > MAX_LINE_BYTES else line for line in lines]


def column_index(header: bytes | None, column: str) -> int:
    """The 0-based index of --column: its 1-based number, or its name in the header line."""
    if column.isdigit():
        if int(column) < 1:
            raise InputError("--column counts from 1")
        return int(column) - 1
    cells = _cells(line_text(header)) if header is not None else None
    if not cells or column not in cells:
        raise InputError("the CSV header has no column named by --column")
    return cells.index(column)


def targets_of(lines: list[bytes | None], column: int | None) -> list[str | None]:
    """One target per line (None for a line that cannot be one): the line, or its CSV cell."""
    if column is None:
        return [line_text(line) for line in lines]
    targets = []
    for line in lines:
        cells = _cells(line_text(line))
        targets.append(cells[column] if cells is not None and column < len(cells) else None)
    return targets


def _cells(text: str | None) -> list[str] | None:
    # One line is one row: logs do not quote line breaks, and a bounded line stays bounded.
    if text is None:
        return None
    try:
        return next(csv.reader([text]), [])
    except csv.Error:
        return None


def chunks(items: list, size: int) -> list[list]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _with_header(blocks: Iterator[bytes], column: str | None) -> tuple[int | None, Iterator[bytes]]:
    """--column's index, and the blocks after the header line when the column is named by it."""
    if column is None:
        return None, blocks
    if column.isdigit():
        return column_index(None, column), blocks
    first = next(blocks, None)
    if first is None:
        return column_index(None, column), blocks
    header, _, rest = first.partition(b"\n")
    index = column_index(None if len(header) > MAX_LINE_BYTES else header, column)
    return index, itertools.chain([rest] if rest else [], blocks)


# -- output ---------------------------------------------------------------------------------
class CsvColumns:
    """The CSV columns for a selection: `query`, `error`, then every selected leaf path."""

    def __init__(self, selection: Selection | None, hostname: bool = False):
        selection = selection or parse_fields(DEFAULT_CSV_FIELDS + (",hostname.name,hostname.verified" if hostname else ""))
        allowed = allowed_paths()
        leaves = [path for path in allowed if not any(other.startswith(path + ".") for other in allowed)]
        # A result's ip is always there, first.
        self.paths = ["ip"] + [path for path in leaves if path != "ip" and _selected(selection, path)]
        self._parts = [(path in DOCUMENT_PATHS, path.split(".")) for path in self.paths]

    def header(self) -> bytes:
        return _csv_line(["query", "error", *self.paths])

    def row(self, item: dict) -> list:
        if "error" in item:
            return [item.get("query") or "", item["error"]["code"]] + [""] * len(self.paths)
        results = item["results"]
        located = next((result for result in results if "error" not in result), None)
        if located is None:
            return [item["query"], results[0]["error"]["code"]] + [""] * len(self.paths)
        return [item["query"], ""] + [_cell(_value(item if of_document else located, parts))
                                      for of_document, parts in self._parts]


def _selected(selection: Selection, path: str) -> bool:
    node = selection
    for part in path.split("."):
        node = node.get(part)
        if node is None:
            return False
        if node is True:
            return True
    return True


def _value(result: dict, parts: list[str]):
    value = result
    for part in parts:
        if isinstance(value, list):
            value = [item.get(part) for item in value if isinstance(item, dict)]
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(_cell(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv_line(cells: list) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue().encode("utf-8")


def format_items(items: list[dict], options: BulkOptions, columns: CsvColumns | None) -> tuple[bytes, int, int]:
    """(output bytes, failed lines, located results) for one chunk's items."""
    failed = addresses = 0
    for item in items:
        if "error" in item:
            failed += 1
        else:
            addresses += sum(1 for result in item["results"] if "error" not in result)
    if columns is None:
        dumps = orjson.dumps
        return b"".join([dumps(item) + b"\n" for item in items]), failed, addresses
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(columns.row(item) for item in items)
    return buffer.getvalue().encode("utf-8"), failed, addresses


# -- the process ------------------------------------------------------------------------------
# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Tells glibc's allocator to keep what a bulk process frees for its next block, rather than
    giving it back to the kernel and faulting it in again: a block's output is megabytes of line
    objects and chunks, freed together once written, which by default trims the heap (or unmaps
    the chunk) every block, and the page faults cost about a tenth of a run. The process's peak
    stays what it was (blocks are bounded); it is only not returned between blocks. Called once
    by the command, before worker processes fork (they inherit it). False where the C library is
    not glibc: nothing changes there."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # Large allocations from the heap too (32 MB is glibc's most), and no trimming at all.
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


# -- the run --------------------------------------------------------------------------------
class ChunkEnricher:
    """One process's lookups of blocks: JSON Lines from SerializedLookups (templates per City
    record, kept across blocks), CSV and hostnames from the documents themselves. A block's lines
    that need the batch path go to it CHUNK_LINES at a time, each batch with its own DNS budget."""

    def __init__(self, lookup, options: BulkOptions, columns: CsvColumns | None, column: int | None):
        self.lookup, self.options, self.columns, self.column = lookup, options, columns, column
        self.serialized = (SerializedLookups(lookup, options.lang, options.selection)
                           if columns is None and not options.hostname else None)

    def __call__(self, block: bytes) -> tuple[list[bytes], int, int, int]:
        """(the output in pieces, one per chunk; lines, failed lines, located results) for one
        block. Pieces, not one joined bytes: a block's output is megabytes, and another copy of
        it is only more memory to allocate and free per block."""
        lines = split_block(block)
        if self.serialized is not None:
            if self.column is not None:
                lines = [None if target is None else target.encode() for target in targets_of(lines, self.column)]
            enrich = self._serialized_chunk
        else:
            lines, enrich = targets_of(lines, self.column), self._document_chunk
        out, failed, located = [], 0, 0
        for chunk in chunks(lines, CHUNK_LINES):
            data, chunk_failed, chunk_located = enrich(chunk)
            out.append(data)
            failed += chunk_failed
            located += chunk_located
        return out, len(lines), failed, located

    def _serialized_chunk(self, lines: list) -> tuple[bytes, int, int]:
        encoded, failed, located = self.serialized.many(lines)
        return b"\n".join(encoded) + b"\n", failed, located

    def _document_chunk(self, targets: list) -> tuple[bytes, int, int]:
        options = self.options
        items = select_items(self.lookup.lookup_many(targets, options.lang, hostname=options.hostname),
                             options.selection)
        return format_items(items, options, self.columns)


class OrderedWrites:
    """Worker processes write their blocks' output straight to the output file, in input order:
    the block numbered k is written once k-1 has been. Their output (a kilobyte per address) then
    never passes through the parent, which would copy every byte twice more (pickled, then
    written) on the same cores as the lookups. Blocks are taken in order, so the lowest one not
    yet written is always being looked up or waiting for its turn: no block waits for a later one."""

    def __init__(self, context, fd: int):
        self.fd = fd
        self._next = context.Value("q", 0, lock=False)  # guarded by the condition's lock
        self._aborted = context.Value("b", 0, lock=False)
        self._turn = context.Condition()

    def write(self, sequence: int, pieces: list[bytes]) -> None:
        with self._turn:
            while self._next.value != sequence:
                if self._aborted.value:
                    raise RuntimeError("the run was stopped")
                self._turn.wait(0.5)
            try:
                for piece in pieces:
                    view = memoryview(piece)
                    while view:
                        view = view[os.write(self.fd, view):]
            finally:
                self._next.value = sequence + 1
                self._turn.notify_all()

    def abort(self) -> None:
        self._aborted.value = 1


def _output_fd(out: BinaryIO) -> int | None:
    """The file descriptor worker processes can write `out` through (after it is flushed), or None."""
    try:
        out.flush()
        return out.fileno()
    except (AttributeError, OSError, ValueError):  # io.BytesIO, say: the output comes back to the parent
        return None


_worker: dict = {}


def _worker_start(make_lookup, options, columns, column, writes):
    _worker["enrich"] = ChunkEnricher(make_lookup(), options, columns, column)
    _worker["writes"] = writes


def _worker_block(sequence: int, block: bytes):
    done = _worker["enrich"](block)
    writes = _worker["writes"]
    if writes is None:
        return done
    writes.write(sequence, done[0])
    return ([],) + done[1:]


def run_bulk(make_lookup: Callable, stream: BinaryIO, out: BinaryIO, options: BulkOptions,
             progress: "Progress | None" = None) -> BulkReport:
    """Look up every target of `stream` and write the items to `out`, in input order.
    `make_lookup()` builds the lookup service (once here, or once in each worker process).
    The input goes to the lookups in blocks of whole lines (BLOCK_BYTES), split where they are
    looked up: reading costs nothing per line, whichever process splits them."""
    columns = CsvColumns(options.selection, options.hostname) if options.format == "csv" else None
    report = BulkReport()
    column, blocks = _with_header(line_blocks(stream, BLOCK_BYTES, MAX_LINE_BYTES), options.column)
    if columns is not None:
        out.write(columns.header())

    def write(done) -> None:
        pieces, lines, failed, addresses = done
        for piece in pieces:
            out.write(piece)
        report.lines += lines
        report.failed += failed
        report.addresses += addresses
        if progress is not None:
            progress.update(report, stream)

    if options.jobs <= 1:
        enrich = ChunkEnricher(make_lookup(), options, columns, column)
        for block in blocks:
            write(enrich(block))
    else:
        # fork: the workers inherit make_lookup and the output file; they build their services after the fork.
        context = multiprocessing.get_context("fork")
        fd = _output_fd(out)
        writes = OrderedWrites(context, fd) if fd is not None else None
        with concurrent.futures.ProcessPoolExecutor(options.jobs, mp_context=context, initializer=_worker_start,
                                                    initargs=(make_lookup, options, columns, column, writes)) as pool:
            pending: collections.deque = collections.deque()
            try:
                for sequence, block in enumerate(blocks):
                    pending.append(pool.submit(_worker_block, sequence, block))
                    if len(pending) >= 3 * options.jobs:  # bounded: input is read only as fast as it is written
                        write(pending.popleft().result())
                while pending:
                    write(pending.popleft().result())
            except BaseException:
                if writes is not None:
                    writes.abort()  # the blocks after a failed one must not wait for it
                for future in pending:
                    future.cancel()
                raise
    if progress is not None:
        progress.finish(report)
    return report


@dataclass
class Progress:
    """Lines and addresses per second on a terminal (stderr), with an ETA when the input's size
    is known; nothing at all when stderr is not a terminal (the caller does not make one)."""

    stream: object
    total_bytes: int | None = None
    clock: Callable[[], float] = time.monotonic
    interval: float = 0.5
    started: float = field(default=0.0)
    _next: float = field(default=0.0)

    def __post_init__(self):
        self.started = self._next = self.clock()

    def update(self, report: BulkReport, source) -> None:
        now = self.clock()
        if now < self._next:
            return
        self._next = now + self.interval
        elapsed = max(now - self.started, 1e-9)
        text = f"\r{report.lines:,} lines, {report.addresses / elapsed:,.0f} addresses/s"
        position = _position(source)
        if self.total_bytes and position:
            remaining = elapsed * (self.total_bytes - position) / position
            text += f", {100 * position / self.total_bytes:.0f}%, ETA {remaining:.0f} s"
        self.stream.write(text + "   ")
        self.stream.flush()

    def finish(self, report: BulkReport) -> None:
        elapsed = max(self.clock() - self.started, 1e-9)
        self.stream.write(f"\r{report.lines:,} lines, {report.failed:,} failed, "
                          f"{report.addresses / elapsed:,.0f} addresses/s in {elapsed:.1f} s\n")
        self.stream.flush()


def _position(source) -> int | None:
    try:
        return source.tell()
    except (OSError, ValueError, AttributeError):
        return None


def input_size(stream) -> int | None:
    """The size of a regular file (for the ETA), None for a pipe."""
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return stat.st_size if S_ISREG(stat.st_mode) else None
