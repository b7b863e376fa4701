"""Decide whether a candidate .mmdb may replace a live database of its edition (editions.py).

It must open with the same C reader the workers use (in a child process: see inspect_db.py), be of
a type its edition accepts (an ASN file offered as City is refused, and the reverse), have a search
tree that fits in the file, answer well-known addresses with its kind's data (a location, an
autonomous system), decode its first records, and not be older than the live file (unless forced).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from .editions import edition_named
from .errors import ChecksumMismatch, InvalidDatabase, NotNewer

FUTURE_SLACK = 7 * 86400
INSPECT_TIMEOUT = 120.0
_INSPECTOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inspect_db.py")


@dataclass(frozen=True)
class DatabaseFacts:
    database_type: str
    build_epoch: int
    ip_version: int
    node_count: int
    md5: str
    size: int


def file_md5(path: str) -> str:
    return _file_digest(path, hashlib.md5(usedforsecurity=False))


def file_sha256(path: str) -> str:
    """The fleet's identity of a database file (its ETag between the updater and the replicas)."""
    return _file_digest(path, hashlib.sha256())


def _file_digest(path: str, digest) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, lambda: digest).hexdigest()


def read_facts(path: str, md5: str | None = None, edition: str = "city") -> DatabaseFacts:
    """Open and check path as a database of `edition`; InvalidDatabase says what is wrong with it."""
    kind = edition_named(edition)
    size = os.path.getsize(path)
    if size == 0:
        raise InvalidDatabase("the database file is empty")
    child = _start_inspection(path, kind.probe)
    try:
        digest = md5 or file_md5(path)  # while the child reads the file (in the page cache for both)
    except BaseException:
        child.kill()
        child.communicate()
        raise
    report = _inspection_report(child)
    if not report["ok"]:
        problem = {"open": "not a readable MaxMind DB file", "metadata": "its metadata is corrupt",
                   "data": "its data section is corrupt"}[report["stage"]]
        raise InvalidDatabase(f"{problem} ({report['error']})")
    database_type = report["database_type"]
    if not kind.accepts(database_type):
        raise InvalidDatabase(f"not {'an' if kind.kind[0] in 'AEIOU' else 'a'} {kind.kind} database: "
                              f"its type is {database_type!r}")
    if report["ip_version"] not in (4, 6):
        raise InvalidDatabase(f"IP version {report['ip_version']} is not 4 or 6")
    node_count, record_size = report["node_count"], report["record_size"]
    if node_count < 1 or record_size not in (24, 28, 32) or node_count * record_size // 4 >= size:
        raise InvalidDatabase(f"the search tree ({node_count} nodes of {record_size} bits) does not fit the file")
    if report["build_epoch"] > time.time() + FUTURE_SLACK:
        raise InvalidDatabase("its build date lies in the future")
    if report["hits"] == 0:
        what = "a location" if kind.probe == "location" else "an autonomous system"
        raise InvalidDatabase(f"it answers none of the well-known sanity addresses with {what}")
    return DatabaseFacts(database_type, report["build_epoch"], report["ip_version"], node_count, digest, size)


def _start_inspection(path: str, probe: str) -> subprocess.Popen:
    """inspect_db.py in its own process: a reader that crashes on a damaged file takes only the child."""
    return subprocess.Popen([sys.executable, "-I", _INSPECTOR, path, probe], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def _inspection_report(child: subprocess.Popen) -> dict:
    try:
        stdout, _ = child.communicate(timeout=INSPECT_TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise InvalidDatabase(f"reading it took more than {INSPECT_TIMEOUT:g} s: refused") from None
    if child.returncode < 0:
        name = signal.Signals(-child.returncode).name
        raise InvalidDatabase(f"the MaxMind DB reader crashed on it ({name}): refused")
    try:
        return json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise InvalidDatabase(f"it could not be inspected (exit status {child.returncode})") from None


def check_replaces(candidate: DatabaseFacts, live: DatabaseFacts | None, expected_md5: str | None, force: bool) -> None:
    if expected_md5 and candidate.md5.lower() != expected_md5.lower():
        raise ChecksumMismatch(f"the md5 of the new database ({candidate.md5}) is not the one the source announced ({expected_md5})")
    if live is not None and not force and candidate.build_epoch < live.build_epoch:
        raise NotNewer(f"the new database was built {_date(candidate.build_epoch)}, before the live one "
                       f"({_date(live.build_epoch)}); use --force to install it anyway")


def _date(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))
