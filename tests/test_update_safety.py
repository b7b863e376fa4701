"""Nothing is ever lost: broken inputs are refused, interrupted or concurrent updates leave the live
file as it was, rollback restores the replaced file; and the `update-db` command's exit codes,
summary and progress output."""
from __future__ import annotations

import fcntl
import gzip
import json
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from app.config import UpdateConfig
from app.updater.errors import ExitCode
from app.updater.lock import UpdateLock
from app.updater.run import UpdateOptions, run_update
from app.updater.state import UpdateState
from app.updater.status import describe_live_database, status_lines
from tests.support.fake_update_servers import (FakeHttpServer, Reply, build_city_db, gzip_bomb_bytes, gzip_bytes,
                                               place, tar_gz_bytes)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "testdata" / "maxmind"


@pytest.fixture
def live(tmp_path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    path = directory / "city.mmdb"
    build_city_db(path, 2)
    yield path
    # Whatever happened, success or failure, no temporary stays beside the database.
    assert leftovers(path) == []


@pytest.fixture
def built(tmp_path):
    """built(version, **kwargs) -> bytes of a City DB."""
    out = tmp_path / "built"
    out.mkdir()

    def make(version: int, **kwargs) -> bytes:
        return build_city_db(out / f"v{version}-{len(os.listdir(out))}.mmdb", version, **kwargs).read_bytes()
    return make


@pytest.fixture
def server():
    with FakeHttpServer() as fake:
        yield fake


def leftovers(live: Path) -> list[str]:
    return sorted(name for name in os.listdir(live.parent) if name.endswith(".tmp"))


def update_from(live: Path, source: str, **options):
    return run_update(UpdateConfig(city_db_path=str(live), http_timeout=5), UpdateOptions(source=source, **options))


def invoke(live: Path, *args) -> subprocess.CompletedProcess:
    """The real click command, in this process (faster than a new interpreter per call)."""
    from click.testing import CliRunner

    import cli as command_line
    result = CliRunner().invoke(command_line.cli, list(args), env={"GEOIP_CITY_DB": str(live)}, catch_exceptions=False)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def cli(live: Path, *args, env=None, **kwargs) -> subprocess.CompletedProcess:
    """The command in its own process, where signals, locks held by others or log output matter."""
    environment = {**os.environ, "GEOIP_CITY_DB": str(live), "UPDATE_HTTP_TIMEOUT": "5", **(env or {})}
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=60, **kwargs)


# ----------------------------------------------------------------------------- refused inputs


def _broken_inputs(tmp: Path, built) -> dict[str, tuple[Path, str]]:
    good = built(3)
    cases = {
        "empty": (b"", "empty"),
        "garbage": (os.urandom(4096), "not a readable MaxMind DB"),
        "truncated mmdb": (good[: len(good) // 2], "not a readable MaxMind DB"),
        "truncated gzip": (gzip_bytes(good)[:-200], "corrupt or truncated"),
        "corrupt gzip": (gzip_bytes(good)[:20] + os.urandom(200), "corrupt or truncated"),
        "gzip bomb": (gzip_bomb_bytes(256 << 20), "gzip bomb"),
        "tar without mmdb": (_tar_without_mmdb(), "no .mmdb"),
        "country database": (built(3, database_type="GeoIP2-Country"), "not a City database"),
        "no sane answers": (built(3, records={"7.7.7.0/24": place("Nowhere")}), "sanity addresses"),
    }
    out = {}
    for name, (content, message) in cases.items():
        path = tmp / name.replace(" ", "-")
        path.write_bytes(content)
        out[name] = (path, message)
    if SHARED.is_dir():
        out["broken data section (shared)"] = (SHARED / "GeoIP2-City-Test-Broken-Double-Format.mmdb", "data section is corrupt")
        out["invalid node count (shared)"] = (SHARED / "GeoIP2-City-Test-Invalid-Node-Count.mmdb", "not a readable MaxMind DB")
        out["ASN database (shared)"] = (SHARED / "GeoLite2-ASN-Test.mmdb", "not a City database")
    return out


def _tar_without_mmdb() -> bytes:
    import io
    import tarfile
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("GeoLite2-City_20260101/LICENSE.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"ok"))
    return buffer.getvalue()


def test_broken_inputs_are_refused_and_the_live_file_stays(tmp_path, live, built):
    before = live.read_bytes()
    cases = _broken_inputs(tmp_path, built)
    assert len(cases) >= 9
    for name, (path, message) in cases.items():
        result = update_from(live, str(path))
        assert (result.outcome, result.exit_code) == ("failed", ExitCode.FAILED), name
        assert result.error == "INVALID_DATABASE", (name, result.message)
        assert message in result.message, (name, result.message)
        assert live.read_bytes() == before, name
        assert leftovers(live) == [], name
    assert not Path(str(live) + ".previous").exists()


def test_gzip_bomb_is_stopped_early(tmp_path, live):
    bomb = tmp_path / "bomb.mmdb.gz"
    bomb.write_bytes(gzip_bomb_bytes(1 << 30))  # 1 GiB of zeros in about 1 MB
    result = update_from(live, str(bomb))
    # Only the ratio check says "gzip bomb", and it fires just past its 16 MiB floor: the GiB was
    # never expanded (the size limit, far above the floor, would have said something else).
    assert result.error == "INVALID_DATABASE" and "gzip bomb" in result.message


def test_size_limit_applies_to_downloads(live, server, built):
    server.routes["/big.mmdb"] = lambda request: Reply(200, built(3))
    config = UpdateConfig(city_db_path=str(live), max_db_bytes=2048, http_timeout=5)
    result = run_update(config, UpdateOptions(source=server.base_url + "/big.mmdb"))
    assert result.outcome == "failed" and "allowed" in result.message


def test_an_older_database_needs_force(tmp_path, live, built):
    older = tmp_path / "older.mmdb"
    older.write_bytes(built(1))
    before = live.read_bytes()
    result = update_from(live, str(older))
    assert (result.outcome, result.exit_code) == ("current", ExitCode.ALREADY_CURRENT)
    assert "--force" in result.message and live.read_bytes() == before
    assert leftovers(live) == []
    forced = update_from(live, str(older), force=True)
    assert forced.outcome == "updated" and live.read_bytes() == older.read_bytes()


def test_the_same_file_again_is_already_current(tmp_path, live):
    copy = tmp_path / "same.mmdb"
    copy.write_bytes(live.read_bytes())
    inode = live.stat().st_ino
    result = update_from(live, str(copy))
    assert (result.outcome, result.exit_code) == ("current", ExitCode.ALREADY_CURRENT)
    assert live.stat().st_ino == inode  # not even renamed: workers keep their map
    assert leftovers(live) == []


def test_install_is_a_rename_and_keeps_the_old_inode_as_previous(tmp_path, live, built):
    new = tmp_path / "new.mmdb"
    new.write_bytes(built(3))
    old_inode = live.stat().st_ino
    assert update_from(live, str(new)).outcome == "updated"
    assert live.stat().st_ino != old_inode
    assert Path(str(live) + ".previous").stat().st_ino == old_inode
    assert oct(live.stat().st_mode & 0o777) == "0o644"


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path, live, built):
    stale = live.parent / f".{live.name}.download.abc123.tmp"
    stale.write_bytes(b"partial")
    new = tmp_path / "new.mmdb"
    new.write_bytes(built(3))
    assert update_from(live, str(new)).outcome == "updated"
    assert not stale.exists()


# ----------------------------------------------------------------------------- interruption and the lock


def _stalled_download(server: FakeHttpServer, body: bytes) -> threading.Event:
    release = threading.Event()
    server.routes["/slow.mmdb.gz"] = lambda request: Reply(200, body, cut_after=len(body) // 3, hold=release)
    return release


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_interrupted_download_leaves_the_live_file_intact(live, server, built, signum):
    before = live.read_bytes()
    release = _stalled_download(server, gzip_bytes(built(3)))
    environment = {**os.environ, "GEOIP_CITY_DB": str(live)}
    process = subprocess.Popen([sys.executable, "cli.py", "update-db", "--source", server.base_url + "/slow.mmdb.gz"],
                               cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: any(".download." in name for name in leftovers(live)) and server.requests)
        time.sleep(0.2)
        process.send_signal(signum)
        process.wait(20)
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert live.read_bytes() == before
    if signum == signal.SIGTERM:
        assert process.returncode != 0 and leftovers(live) == []
    # Killed outright, it leaves a temporary: the next run removes it, and the lock died with the process.
    result = update_from(live, str(live) + ".missing")
    assert result.error == "SOURCE_ERROR" and leftovers(live) == []


def test_a_second_updater_says_so_and_exits(live):
    with UpdateLock(str(live)):
        done = cli(live, "update-db", "--source", str(live))
    assert done.returncode == ExitCode.LOCKED
    assert "another update" in done.stderr and f"pid {os.getpid()}" in done.stderr


def test_two_concurrent_updaters_never_interleave(live, server, built):
    release = _stalled_download(server, gzip_bytes(built(3)))
    environment = {**os.environ, "GEOIP_CITY_DB": str(live)}
    first = subprocess.Popen([sys.executable, "cli.py", "update-db", "--retry-for", "0s", "--source", server.base_url + "/slow.mmdb.gz"],
                             cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: len(server.requests) == 1)
        second = cli(live, "update-db", "--source", server.base_url + "/slow.mmdb.gz")
        assert second.returncode == ExitCode.LOCKED and len(server.requests) == 1
    finally:
        release.set()
        first.wait(30)
    assert first.returncode == ExitCode.FAILED  # the stalled body was cut short: refused, live kept


# ----------------------------------------------------------------------------- rollback


def test_rollback_swaps_back_and_forth(tmp_path, live, built):
    v2 = live.read_bytes()
    new = tmp_path / "v3.mmdb"
    new.write_bytes(built(3))
    assert update_from(live, str(new)).outcome == "updated"
    done = invoke(live, "update-db", "--rollback", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["outcome"] == "rolled_back" and summary["new_build_date"] < summary["old_build_date"]
    assert live.read_bytes() == v2 and Path(str(live) + ".previous").read_bytes() == new.read_bytes()
    assert UpdateState.load(str(live)).previous["source"] == "file"
    assert invoke(live, "update-db", "--rollback").returncode == 0
    assert live.read_bytes() == new.read_bytes()
    assert UpdateState.load(str(live)).source == "file"


def test_rollback_without_previous_fails_plainly(live):
    done = invoke(live, "update-db", "--rollback")
    assert done.returncode == ExitCode.FAILED and "no previous database" in done.stderr


def test_rollback_refuses_a_broken_previous(live):
    Path(str(live) + ".previous").write_bytes(b"not a database")
    before = live.read_bytes()
    done = invoke(live, "update-db", "--rollback")
    assert done.returncode == ExitCode.FAILED and "not usable" in done.stderr
    assert live.read_bytes() == before


# ----------------------------------------------------------------------------- the command


def test_json_summary_and_exit_codes(tmp_path, live, built):
    new = tmp_path / "v3.mmdb.gz"
    new.write_bytes(gzip_bytes(built(3)))
    done = invoke(live, "update-db", "--source", str(new), "--json")
    assert done.returncode == ExitCode.UPDATED, done.stderr
    summary = json.loads(done.stdout)
    assert summary["outcome"] == "updated" and summary["source"] == "file"
    assert summary["old_build_date"] < summary["new_build_date"]
    assert len(summary["md5"]) == 32 and summary["bytes"] == live.stat().st_size and summary["seconds"] >= 0
    again = invoke(live, "update-db", "--source", str(new), "--json")
    assert again.returncode == ExitCode.ALREADY_CURRENT and json.loads(again.stdout)["outcome"] == "current"
    skipped = invoke(live, "update-db", "--source", "/nonexistent/file.mmdb", "--if-older-than", "24h", "--json")
    assert skipped.returncode == ExitCode.ALREADY_CURRENT and json.loads(skipped.stdout)["outcome"] == "skipped"
    failed = invoke(live, "update-db", "--source", "/nonexistent/file.mmdb", "--if-older-than", "0s")
    assert failed.returncode == ExitCode.FAILED and "does not exist" in failed.stderr
    assert "Traceback" not in failed.stderr
    usage = invoke(live, "update-db", "--rollback", "--force")
    assert usage.returncode == ExitCode.USAGE
    bad_duration = invoke(live, "update-db", "--retry-for", "soon")
    assert bad_duration.returncode == ExitCode.USAGE and "duration" in bad_duration.stderr


def test_if_older_than_skips_without_network(live, server, built):
    server.routes["/v3.mmdb"] = lambda request: Reply(200, built(3))
    url = server.base_url + "/v3.mmdb"
    assert update_from(live, url).outcome == "updated"
    assert update_from(live, url, if_older_than=86400).outcome == "skipped"
    assert len(server.requests) == 1
    assert update_from(live, url, if_older_than=0).outcome == "current"


def test_log_lines_when_not_a_terminal(live, server, built):
    server.routes["/v3.mmdb"] = lambda request: Reply(200, built(3))
    done = cli(live, "update-db", "--source", server.base_url + "/v3.mmdb")
    assert done.returncode == 0
    lines = done.stderr.strip().splitlines()
    assert any("downloading v3.mmdb" in line for line in lines)
    assert any("downloaded v3.mmdb" in line for line in lines)
    assert "\r" not in done.stderr  # no bar redrawing into a log file


def test_progress_bar_on_a_terminal(live, server, built):
    server.routes["/v3.mmdb"] = lambda request: Reply(200, built(3))
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    try:
        environment = {**os.environ, "GEOIP_CITY_DB": str(live)}
        process = subprocess.Popen([sys.executable, "cli.py", "update-db", "--source", server.base_url + "/v3.mmdb"],
                                   cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        process.wait(30)
    finally:
        os.close(leader)
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0
    assert "100%" in text and "B/s" in text  # bytes, rate (and ETA) from the bar


def test_status_shows_source_and_last_check(tmp_path, live, built):
    new = tmp_path / "v3.mmdb"
    new.write_bytes(built(3))
    assert update_from(live, str(new)).outcome == "updated"
    info = describe_live_database(str(live))
    assert info["source"] == "file" and info["build_date"] and info["last_outcome"] == "updated"
    assert info["previous_available"] is True
    lines = status_lines(str(live))
    assert lines[0].startswith(f"source file: {new}, installed 20")
    assert lines[1].startswith("last check 20") and lines[1].endswith("(updated)")
    assert "--rollback" in lines[2]
    done = invoke(live, "status")
    assert "  updates:    last check" in done.stdout and "source file" in done.stdout, done.stdout + done.stderr
    failed = update_from(live, str(tmp_path / "missing.mmdb"))
    lines = status_lines(str(live))
    assert "(failed), last success 20" in lines[1] and lines[2].startswith("last error: ")
    assert describe_live_database(str(live))["source"] == "file"  # a failure does not change the live file's origin
    assert failed.outcome == "failed"


def test_status_of_a_missing_database(tmp_path):
    assert status_lines(str(tmp_path / "none.mmdb")) == ["no database yet: run `cli.py update-db`", "last check: never"]


def test_an_unwritable_database_directory_is_a_plain_failure(tmp_path, built):
    source = tmp_path / "v3.mmdb"
    source.write_bytes(built(3))
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the directory should be")
    result = update_from(blocker / "city.mmdb", str(source))
    assert (result.outcome, result.exit_code, result.error) == ("failed", ExitCode.FAILED, "LOCAL_ERROR")
    assert "cannot write the database" in result.message
