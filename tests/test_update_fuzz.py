"""Damaged files of every packaging (cut anywhere, bytes flipped anywhere) are either still a
usable City database or refused as InvalidDatabase: never another exception, never a crash.

Each example starts the C reader in a child process (verify.py), hence the modest example counts."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.updater.errors import InvalidDatabase
from app.updater.unpack import unpack
from app.updater.verify import read_facts
from tests.support.fake_update_servers import build_city_db, gzip_bytes, tar_gz_bytes


@pytest.fixture(scope="module")
def packagings() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as directory:
        mmdb = build_city_db(Path(directory) / "v1.mmdb", 1).read_bytes()
    return {"mmdb": mmdb, "mmdb.gz": gzip_bytes(mmdb), "tar.gz": tar_gz_bytes(mmdb)}


def check_refused_or_valid(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        raw, candidate = Path(directory) / "raw", Path(directory) / "candidate"
        raw.write_bytes(content)
        try:
            unpacked = unpack(str(raw), str(candidate), max_bytes=1 << 24)
            facts = read_facts(str(candidate), unpacked.md5)
        except InvalidDatabase as refused:
            assert str(refused)  # a message to show
            return
        assert "City" in facts.database_type and facts.size > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["mmdb", "mmdb.gz", "tar.gz"]), cut=st.floats(0, 1, exclude_max=True))
def test_cut_anywhere(packagings, kind, cut):
    content = packagings[kind]
    check_refused_or_valid(content[: int(len(content) * cut)])


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["mmdb", "mmdb.gz", "tar.gz"]),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=8))
def test_bytes_flipped_anywhere(packagings, kind, flips):
    content = bytearray(packagings[kind])
    for where, mask in flips:
        content[int(len(content) * where)] ^= mask
    check_refused_or_valid(bytes(content))


def test_a_file_that_crashes_the_c_reader_is_refused_not_fatal(packagings):
    """One flipped byte in v1 makes maxminddb 3.2's C extension abort (heap corruption) while
    walking the tree; found by the test above. Inspected in-process, it would kill the updater."""
    damaged = bytearray(packagings["mmdb"])
    damaged[1403] ^= 51
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "damaged.mmdb"
        path.write_bytes(bytes(damaged))
        with pytest.raises(InvalidDatabase, match="crashed on it|corrupt"):
            read_facts(str(path))
