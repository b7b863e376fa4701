"""Every source of `update-db` against its imitation on 127.0.0.1: MaxMind's protocol, DB-IP's monthly
files, a URL, a local path and the PyPI snapshot, with the failure answers each can give."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from app.config import UpdateConfig
from app.updater.errors import ExitCode
from app.updater.run import UpdateOptions, run_update
from app.updater.sources.dbip import DbIpSource
from app.updater.state import UpdateState
from app.updater.verify import file_md5
from tests.support.fake_update_servers import (DbIpImitation, FakeHttpServer, MaxMindImitation, PackageIndexImitation,
                                               build_city_db, gzip_bytes, tar_gz_bytes, wheel_bytes)

# Sources are always named here: with no source and no database, the updater would fall back to the
# real PyPI snapshot, and tests send traffic only to their own servers on 127.0.0.1.
FAST = UpdateOptions(source="maxmind", retry_for=3.0, first_retry_wait=0.05)
FAST_DBIP = UpdateOptions(source="dbip", retry_for=3.0, first_retry_wait=0.05)


def patient(seconds: float, source: str = "maxmind") -> UpdateOptions:
    return UpdateOptions(source=source, retry_for=seconds, first_retry_wait=0.05)
EDITION = "GeoLite2-City"


@pytest.fixture
def server():
    with FakeHttpServer() as fake:
        yield fake


@pytest.fixture
def storage():
    with FakeHttpServer() as fake:
        yield fake


@pytest.fixture
def versions(tmp_path) -> dict[int, bytes]:
    """City DBs v1..v3, each built a day after the one before."""
    out = tmp_path / "built"
    out.mkdir()
    return {v: build_city_db(out / f"v{v}.mmdb", v).read_bytes() for v in (1, 2, 3)}


@pytest.fixture
def live(tmp_path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    yield directory / "city.mmdb"
    # Whatever happened, success or failure, no temporary stays beside the database.
    assert leftovers(directory / "city.mmdb") == []


def maxmind_config(live: Path, server: FakeHttpServer, key: str = "secret-key") -> UpdateConfig:
    return UpdateConfig(city_db_path=str(live), maxmind_account_id="42", maxmind_license_key=key,
                        maxmind_edition=EDITION, maxmind_host=server.base_url, dbip_base_url=server.base_url + "/none",
                        cache_dir=str(live.parent / "cache"), http_timeout=5)


def leftovers(live: Path) -> list[str]:
    return sorted(name for name in os.listdir(live.parent) if name.endswith(".tmp"))


# ----------------------------------------------------------------------------- MaxMind


def test_maxmind_downloads_with_basic_auth_and_verifies_md5(live, server, versions):
    maxmind = MaxMindImitation(server)
    md5 = maxmind.publish(EDITION, versions[1], "2026-01-05")
    result = run_update(maxmind_config(live, server), FAST)
    assert (result.outcome, result.exit_code, result.source) == ("updated", ExitCode.UPDATED, "maxmind")
    assert file_md5(live) == md5 == result.md5
    download = server.requests_to(f"/geoip/databases/{EDITION}/download")[0]
    assert download.query == {"date": "20260105", "suffix": "tar.gz"}
    assert download.authorization == maxmind.valid_auth
    assert server.requests_to("/geoip/updates/metadata")[0].query == {"edition_id": EDITION}
    assert leftovers(live) == []


def test_maxmind_matching_md5_skips_the_download(live, server, versions):
    maxmind = MaxMindImitation(server)
    maxmind.publish(EDITION, versions[1])
    assert run_update(maxmind_config(live, server), FAST).outcome == "updated"
    mtime = live.stat().st_mtime_ns
    result = run_update(maxmind_config(live, server), FAST)
    assert (result.outcome, result.exit_code) == ("current", ExitCode.ALREADY_CURRENT)
    assert len(server.requests_to(f"/geoip/databases/{EDITION}/download")) == 1  # only the first run
    assert live.stat().st_mtime_ns == mtime


def test_maxmind_new_md5_downloads_the_new_release(live, server, versions):
    maxmind = MaxMindImitation(server)
    maxmind.publish(EDITION, versions[1])
    run_update(maxmind_config(live, server), FAST)
    new_md5 = maxmind.publish(EDITION, versions[2], "2026-01-09")
    result = run_update(maxmind_config(live, server), FAST)
    assert result.outcome == "updated" and file_md5(live) == new_md5
    assert file_md5(str(live) + ".previous") == file_md5_bytes(versions[1])


def file_md5_bytes(data: bytes) -> str:
    import hashlib
    return hashlib.md5(data).hexdigest()


def test_maxmind_follows_redirect_to_storage_without_sending_credentials(live, server, storage, versions):
    maxmind = MaxMindImitation(server, storage=storage)
    md5 = maxmind.publish(EDITION, versions[1])
    result = run_update(maxmind_config(live, server), FAST)
    assert result.outcome == "updated" and file_md5(live) == md5
    fetched = storage.requests_to(f"/storage/{EDITION}.tar.gz")
    assert len(fetched) == 1 and fetched[0].authorization is None
    assert fetched[0].query == {"X-Signature": "abc"}


def test_maxmind_bad_key_fails_at_once_without_retry(live, server, versions):
    MaxMindImitation(server).publish(EDITION, versions[1])
    result = run_update(maxmind_config(live, server, key="wrong"), patient(30))
    assert (result.outcome, result.exit_code, result.error) == ("failed", ExitCode.AUTH_REJECTED, "AUTH_REJECTED")
    assert "licence key" in result.message and "could not be authenticated" in result.message
    assert "wrong" not in result.message  # the key itself is never printed
    assert len(server.requests) == 1  # asked once: no retry


def test_maxmind_quota_reached_stops_at_once(live, server, versions):
    maxmind = MaxMindImitation(server)
    maxmind.publish(EDITION, versions[1])
    maxmind.download_status = 429
    result = run_update(maxmind_config(live, server), patient(30))
    assert (result.outcome, result.exit_code, result.error) == ("failed", ExitCode.QUOTA_REACHED, "QUOTA_REACHED")
    assert "quota" in result.message
    assert len(server.requests_to(f"/geoip/databases/{EDITION}/download")) == 1
    assert not live.exists() and leftovers(live) == []


def test_maxmind_server_errors_are_retried_until_success(live, server, versions):
    maxmind = MaxMindImitation(server)
    md5 = maxmind.publish(EDITION, versions[1])
    maxmind.fail_next(3)  # metadata 500, metadata 500, metadata 500, then fine
    result = run_update(maxmind_config(live, server), FAST)
    assert result.outcome == "updated" and file_md5(live) == md5
    assert len(server.requests_to("/geoip/updates/metadata")) == 4


def test_maxmind_server_errors_past_retry_for_fail_and_keep_nothing(live, server, versions):
    maxmind = MaxMindImitation(server)
    maxmind.publish(EDITION, versions[1])
    maxmind.fail_next(10_000)
    result = run_update(maxmind_config(live, server), patient(0.5))
    assert (result.outcome, result.exit_code, result.error) == ("failed", ExitCode.FAILED, "NETWORK_ERROR")
    assert "HTTP 500" in result.message
    assert 2 <= len(server.requests) < 30


def test_maxmind_truncated_body_is_never_installed(live, server, versions):
    maxmind = MaxMindImitation(server)
    maxmind.publish(EDITION, versions[1])
    run_update(maxmind_config(live, server), FAST)
    before = live.read_bytes()
    maxmind.publish(EDITION, versions[2])
    maxmind.cut_download_after = 500
    result = run_update(maxmind_config(live, server), patient(0.5))
    assert result.outcome == "failed" and "cut" in result.message
    assert len(server.requests_to(f"/geoip/databases/{EDITION}/download")) >= 2  # retried: a cut is transient
    assert live.read_bytes() == before and leftovers(live) == []


def test_maxmind_truncated_once_then_complete(live, server, versions):
    maxmind = MaxMindImitation(server)
    md5 = maxmind.publish(EDITION, versions[1])
    maxmind.cut_download_after = 300
    archive = maxmind.editions[EDITION][0]
    calls = []
    original = server.routes[f"/geoip/databases/{EDITION}/download"]

    def cut_once(request):
        calls.append(request)
        if len(calls) > 1:
            maxmind.cut_download_after = None
        return original(request)

    server.routes[f"/geoip/databases/{EDITION}/download"] = cut_once
    result = run_update(maxmind_config(live, server), FAST)
    assert result.outcome == "updated" and file_md5(live) == md5 and len(calls) == 2
    assert len(archive) > 300


def test_maxmind_wrong_checksum_is_refused(live, server, versions):
    maxmind = MaxMindImitation(server)
    maxmind.publish(EDITION, versions[1])
    run_update(maxmind_config(live, server), FAST)
    before = live.read_bytes()
    maxmind.publish(EDITION, versions[2])
    maxmind.metadata_md5 = "0" * 32
    result = run_update(maxmind_config(live, server), FAST)
    assert (result.outcome, result.error) == ("failed", "CHECKSUM_MISMATCH")
    assert live.read_bytes() == before and leftovers(live) == []


def test_maxmind_unknown_edition_is_a_plain_failure(live, server, versions):
    MaxMindImitation(server).publish("GeoIP2-City", versions[1])
    result = run_update(maxmind_config(live, server), FAST)
    assert (result.outcome, result.error) == ("failed", "NOT_FOUND")
    assert len(server.requests) == 1


# ----------------------------------------------------------------------------- DB-IP


def dbip_config(live: Path, server: FakeHttpServer) -> UpdateConfig:
    return UpdateConfig(city_db_path=str(live), dbip_base_url=server.base_url + "/free", http_timeout=5,
                        cache_dir=str(live.parent / "cache"))


def test_dbip_is_the_default_without_credentials_and_takes_this_month(live, server, versions):
    dbip = DbIpImitation(server)
    today = dt.datetime.now(dt.timezone.utc).date()
    dbip.publish(dbip.month_of(today), versions[2])
    dbip.publish(dbip.month_of(today, 1), versions[1])
    result = run_update(dbip_config(live, server), FAST_DBIP)
    assert (result.outcome, result.source) == ("updated", "dbip")
    assert live.read_bytes() == versions[2]
    assert result.detail.endswith(f"dbip-city-lite-{dbip.month_of(today)}.mmdb.gz")


def test_dbip_falls_back_to_last_month_when_this_month_is_missing(live, server, versions):
    dbip = DbIpImitation(server)
    today = dt.datetime.now(dt.timezone.utc).date()
    dbip.publish(dbip.month_of(today, 1), versions[1])
    result = run_update(dbip_config(live, server), FAST_DBIP)
    assert result.outcome == "updated" and live.read_bytes() == versions[1]
    paths = [request.path for request in server.requests]
    assert paths == [f"/free/dbip-city-lite-{dbip.month_of(today)}.mmdb.gz",
                     f"/free/dbip-city-lite-{dbip.month_of(today, 1)}.mmdb.gz"]


def test_dbip_month_arithmetic_across_the_year():
    source = DbIpSource("http://127.0.0.1:9/free", today=lambda: dt.date(2027, 1, 3))
    assert source.monthly_urls() == ["http://127.0.0.1:9/free/dbip-city-lite-2027-01.mmdb.gz",
                                     "http://127.0.0.1:9/free/dbip-city-lite-2026-12.mmdb.gz"]


def test_dbip_recheck_uses_a_conditional_get(live, server, versions):
    dbip = DbIpImitation(server)
    today = dt.datetime.now(dt.timezone.utc).date()
    dbip.publish(dbip.month_of(today), versions[1])
    assert run_update(dbip_config(live, server), FAST_DBIP).outcome == "updated"
    result = run_update(dbip_config(live, server), FAST_DBIP)
    assert (result.outcome, result.exit_code) == ("current", ExitCode.ALREADY_CURRENT)
    second = server.requests[-1]
    assert second.headers.get("If-None-Match")  # answered 304: nothing downloaded twice
    assert UpdateState.load(str(live)).last_outcome == "current"


def test_dbip_with_neither_month_fails_and_says_why(live, server):
    result = run_update(dbip_config(live, server), UpdateOptions(source="dbip", retry_for=1, first_retry_wait=0.05))
    assert (result.outcome, result.error) == ("failed", "NOT_FOUND")
    assert "HTTP 404" in result.message and len(server.requests) == 2


# ----------------------------------------------------------------------------- URL and local files


@pytest.mark.parametrize("packaging", ["mmdb", "mmdb.gz", "tar.gz"])
def test_url_source_takes_each_packaging(live, server, versions, packaging):
    body = {"mmdb": versions[1], "mmdb.gz": gzip_bytes(versions[1]), "tar.gz": tar_gz_bytes(versions[1])}[packaging]
    from tests.support.fake_update_servers import Reply
    server.routes["/db/file"] = lambda request: Reply(200, body)  # no telling extension: detected from content
    result = run_update(dbip_config(live, server), UpdateOptions(source=f"{server.base_url}/db/file?token=s3cret", retry_for=1))
    assert result.outcome == "updated" and live.read_bytes() == versions[1]
    assert result.detail == f"{server.base_url}/db/file" and "s3cret" not in str(result.to_dict())


@pytest.mark.parametrize("packaging", ["mmdb", "mmdb.gz", "tar.gz"])
def test_local_path_source_takes_each_packaging(live, tmp_path, versions, packaging):
    given = tmp_path / f"given.{packaging}"
    given.write_bytes({"mmdb": versions[1], "mmdb.gz": gzip_bytes(versions[1]), "tar.gz": tar_gz_bytes(versions[1])}[packaging])
    result = run_update(UpdateConfig(city_db_path=str(live)), UpdateOptions(source=str(given)))
    assert result.outcome == "updated" and live.read_bytes() == versions[1]
    assert given.exists()  # the user's file is read, never moved


def test_local_path_that_does_not_exist(live, tmp_path):
    result = run_update(UpdateConfig(city_db_path=str(live)), UpdateOptions(source=str(tmp_path / "nope.mmdb")))
    assert (result.outcome, result.exit_code, result.error) == ("failed", ExitCode.FAILED, "SOURCE_ERROR")
    assert "does not exist" in result.message


# ----------------------------------------------------------------------------- snapshot (PyPI wheel)


@pytest.fixture
def isolated_pip(monkeypatch):
    """pip talks to the imitation index only: no machine-wide config, extra indexes or find-links."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in list(os.environ):
        if name.startswith("PIP_") and name != "PIP_CONFIG_FILE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")


def test_snapshot_comes_from_the_package_index_and_is_cached(live, server, versions, isolated_pip):
    index = PackageIndexImitation(server)
    index.publish(wheel_bytes(versions[1]))
    config = UpdateConfig(city_db_path=str(live), snapshot_index_url=index.index_url,
                          cache_dir=str(live.parent / "cache"))
    result = run_update(config, UpdateOptions(source="snapshot"))
    assert (result.outcome, result.source) == ("updated", "snapshot"), result.message
    assert live.read_bytes() == versions[1] and "CC BY 4.0" in result.detail
    served = len(server.requests)
    live.unlink()
    again = run_update(config, UpdateOptions(source="snapshot"))
    assert again.outcome == "updated" and len(server.requests) == served  # the cached wheel, no network


def test_empty_volume_falls_back_to_the_snapshot_and_says_so(live, server, versions, isolated_pip):
    index = PackageIndexImitation(server)
    index.publish(wheel_bytes(versions[1]))  # DB-IP's files are all missing on this server
    config = UpdateConfig(city_db_path=str(live), dbip_base_url=server.base_url + "/free",
                          snapshot_index_url=index.index_url, cache_dir=str(live.parent / "cache"))
    result = run_update(config, UpdateOptions(retry_for=1, first_retry_wait=0.05))
    assert (result.outcome, result.source, result.fallback) == ("updated", "snapshot", True)
    assert "fallback" in result.message and result.failures[0]["source"] == "dbip"
    assert UpdateState.load(str(live)).fallback is True


def test_no_fallback_when_a_database_exists(live, server, versions, isolated_pip):
    live.write_bytes(versions[1])
    index = PackageIndexImitation(server)
    index.publish(wheel_bytes(versions[2]))
    config = UpdateConfig(city_db_path=str(live), dbip_base_url=server.base_url + "/free",
                          snapshot_index_url=index.index_url, cache_dir=str(live.parent / "cache"))
    result = run_update(config, UpdateOptions(retry_for=1, first_retry_wait=0.05))
    assert (result.outcome, result.source, result.fallback) == ("failed", "dbip", False)
    assert live.read_bytes() == versions[1]
    assert not any(request.path.startswith("/simple") for request in server.requests)


def test_maxmind_forbidden_is_not_retried(live, server, versions):
    maxmind = MaxMindImitation(server)
    maxmind.publish(EDITION, versions[1])
    maxmind.metadata_status = 403
    result = run_update(maxmind_config(live, server), patient(30))
    assert (result.exit_code, result.error) == (ExitCode.AUTH_REJECTED, "AUTH_REJECTED")
    assert len(server.requests) == 1


def test_maxmind_request_timeout_408_is_retried(live, server, versions):
    maxmind = MaxMindImitation(server)
    maxmind.publish(EDITION, versions[1])
    maxmind.metadata_status = 408
    result = run_update(maxmind_config(live, server), patient(0.5))
    assert (result.exit_code, result.error) == (ExitCode.FAILED, "NETWORK_ERROR") and "HTTP 408" in result.message
    assert len(server.requests) >= 2
