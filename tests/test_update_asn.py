"""`cli.py update-db --edition asn`: every source for the ASN edition, verification by edition (an
ASN file offered as City is refused, and the reverse), and one lock, state and rollback per
database; the scheduled updater keeps every configured database fresh."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.config import ConfigError, UpdateConfig
from app.updater.errors import ExitCode
from app.updater.lock import UpdateLock
from app.updater.run import UpdateOptions, UpdateResult, run_rollback, run_update
from app.updater.schedule import run_schedule
from app.updater.state import UpdateState
from app.updater.verify import file_md5
from tests.support.city_fixtures import write_asn_db
from tests.support.fake_update_servers import (DbIpImitation, FakeHttpServer, MaxMindImitation, build_asn_db,
                                               build_city_db, gzip_bytes)

REPO = Path(__file__).resolve().parent.parent


def fast(source: str, edition: str = "asn", **kwargs) -> UpdateOptions:
    return UpdateOptions(source=source, retry_for=2.0, first_retry_wait=0.05, edition=edition, **kwargs)


@pytest.fixture
def server():
    with FakeHttpServer() as fake:
        yield fake


@pytest.fixture
def data(tmp_path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    yield directory
    assert sorted(name for name in os.listdir(directory) if name.endswith(".tmp")) == []


@pytest.fixture
def built(tmp_path) -> dict:
    out = tmp_path / "built"
    out.mkdir()
    return {"asn": {v: build_asn_db(out / f"asn-v{v}.mmdb", v).read_bytes() for v in (1, 2)},
            "city": {v: build_city_db(out / f"city-v{v}.mmdb", v).read_bytes() for v in (1, 2)}}


def config(data: Path, server: FakeHttpServer | None = None, **kwargs) -> UpdateConfig:
    base = server.base_url if server else "http://127.0.0.1:9"
    return UpdateConfig(city_db_path=str(data / "city.mmdb"), asn_db_path=str(data / "asn.mmdb"),
                        maxmind_account_id="42", maxmind_license_key="secret-key", maxmind_host=base,
                        dbip_base_url=base + "/free", cache_dir=str(data / "cache"), http_timeout=5, **kwargs)


def test_maxmind_serves_the_geolite2_asn_edition_over_the_same_protocol(data, server, built):
    maxmind = MaxMindImitation(server)
    md5 = maxmind.publish("GeoLite2-ASN", built["asn"][1], "2026-01-05")
    result = run_update(config(data, server), fast("maxmind"))
    assert (result.outcome, result.edition, result.detail) == ("updated", "asn", "GeoLite2-ASN")
    assert file_md5(data / "asn.mmdb") == md5 and not (data / "city.mmdb").exists()
    assert server.requests_to("/geoip/updates/metadata")[0].query == {"edition_id": "GeoLite2-ASN"}
    again = run_update(config(data, server), fast("maxmind"))
    assert again.outcome == "current"  # the md5 matched: nothing downloaded twice
    assert len(server.requests_to("/geoip/databases/GeoLite2-ASN/download")) == 1


def test_dbip_asn_lite_this_month_then_last(data, server, built):
    dbip = DbIpImitation(server)
    today = dt.datetime.now(dt.timezone.utc).date()
    dbip.publish(dbip.month_of(today, 1), built["asn"][1], product="asn")
    result = run_update(config(data, server), fast("dbip"))
    assert result.outcome == "updated" and (data / "asn.mmdb").read_bytes() == built["asn"][1]
    assert [request.path for request in server.requests] == [
        f"/free/dbip-asn-lite-{dbip.month_of(today)}.mmdb.gz", f"/free/dbip-asn-lite-{dbip.month_of(today, 1)}.mmdb.gz"]


@pytest.mark.parametrize("packaging", ["mmdb", "mmdb.gz"])
def test_url_and_file_sources(data, server, built, tmp_path, packaging):
    from tests.support.fake_update_servers import Reply
    body = built["asn"][1] if packaging == "mmdb" else gzip_bytes(built["asn"][1])
    server.routes["/asn/file"] = lambda request: Reply(200, body)
    assert run_update(config(data, server), fast(server.base_url + "/asn/file")).outcome == "updated"
    local = tmp_path / f"asn-v2.{packaging}"
    local.write_bytes(built["asn"][2] if packaging == "mmdb" else gzip_bytes(built["asn"][2]))
    result = run_update(config(data, server), fast(str(local)))
    assert result.outcome == "updated" and (data / "asn.mmdb").read_bytes() == built["asn"][2]


def test_an_asn_file_offered_as_city_is_refused_and_the_reverse(data, built, tmp_path):
    asn_file, city_file = tmp_path / "asn.mmdb", tmp_path / "city.mmdb"
    asn_file.write_bytes(built["asn"][1])
    city_file.write_bytes(built["city"][1])
    as_city = run_update(config(data), fast(str(asn_file), edition="city"))
    assert (as_city.outcome, as_city.error) == ("failed", "INVALID_DATABASE")
    assert "not a City database" in as_city.message and not (data / "city.mmdb").exists()
    as_asn = run_update(config(data), fast(str(city_file)))
    assert (as_asn.outcome, as_asn.error) == ("failed", "INVALID_DATABASE")
    assert "not an ASN database" in as_asn.message and not (data / "asn.mmdb").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "no_answers"])
def test_a_bad_asn_file_is_refused_and_the_live_one_stays(data, built, tmp_path, damage):
    good = tmp_path / "good.mmdb"
    good.write_bytes(built["asn"][1])
    assert run_update(config(data), fast(str(good))).outcome == "updated"
    bad = tmp_path / "bad.mmdb"
    if damage == "truncated":
        bad.write_bytes(built["asn"][2][: len(built["asn"][2]) // 2])
    elif damage == "garbage":
        bad.write_bytes(os.urandom(8192))
    else:  # an ASN database whose records hold no autonomous system
        writer_path = write_asn_db(tmp_path / "empty-asn.mmdb", {"81.2.69.0/24": {"note": "nothing here"}})
        bad.write_bytes(writer_path.read_bytes())
    result = run_update(config(data), fast(str(bad), force=True))
    assert (result.outcome, result.error) == ("failed", "INVALID_DATABASE"), result.message
    assert (data / "asn.mmdb").read_bytes() == built["asn"][1]


def test_each_database_has_its_own_lock_state_and_rollback(data, built, tmp_path):
    files = {}
    for kind in ("city", "asn"):
        for version in (1, 2):
            files[kind, version] = tmp_path / f"{kind}-{version}.mmdb"
            files[kind, version].write_bytes(built[kind][version])
    cfg = config(data)
    for version in (1, 2):
        for kind in ("city", "asn"):
            assert run_update(cfg, fast(str(files[kind, version]), edition=kind)).outcome == "updated"
    assert UpdateState.load(str(data / "asn.mmdb")).source_detail == str(files["asn", 2])
    assert UpdateState.load(str(data / "city.mmdb")).source_detail == str(files["city", 2])
    # The City update's lock does not hold the ASN update back.
    with UpdateLock(str(data / "city.mmdb")):
        assert run_update(cfg, fast(str(files["city", 1]), edition="city", force=True)).exit_code == ExitCode.LOCKED
        assert run_update(cfg, fast(str(files["asn", 1]), force=True)).outcome == "updated"  # its own lock is free
    assert (data / "asn.mmdb").read_bytes() == built["asn"][1]
    rolled = run_rollback(cfg, "asn")  # back to the ASN file the forced install replaced
    assert (rolled.outcome, rolled.edition) == ("rolled_back", "asn")
    assert (data / "asn.mmdb").read_bytes() == built["asn"][2]
    assert (data / "city.mmdb").read_bytes() == built["city"][2]  # the City database did not move
    assert UpdateState.load(str(data / "city.mmdb")).source_detail == str(files["city", 2])


def test_the_asn_edition_needs_its_path():
    with pytest.raises(ConfigError, match="GEOIP_ASN_DB"):
        UpdateConfig(city_db_path="/x/city.mmdb").live_path("asn")
    assert UpdateConfig.from_env({"GEOIP_ASN_DB": "/x/asn.mmdb"}).database_paths == (
        ("city", "data/city.mmdb"), ("asn", "/x/asn.mmdb"))
    with pytest.raises(ConfigError, match="MAXMIND_ASN_EDITION"):
        UpdateConfig.from_env({"MAXMIND_ASN_EDITION": "GeoLite2-City"})


def test_cli_edition_option(data, built, tmp_path):
    source = tmp_path / "asn.mmdb"
    source.write_bytes(built["asn"][1])
    env = {**os.environ, "GEOIP_CITY_DB": str(data / "city.mmdb"), "GEOIP_ASN_DB": str(data / "asn.mmdb")}
    done = subprocess.run([sys.executable, "cli.py", "update-db", "--edition", "asn", "--source", str(source),
                           "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == ExitCode.UPDATED, done.stderr
    assert (data / "asn.mmdb").read_bytes() == built["asn"][1]
    env.pop("GEOIP_ASN_DB")
    done = subprocess.run([sys.executable, "cli.py", "update-db", "--edition", "asn", "--source", str(source)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "GEOIP_ASN_DB" in done.stderr


def test_the_schedule_keeps_every_configured_database(data):
    seen, stop = [], threading.Event()

    def update(cfg, options):
        seen.append(options.edition)
        if len(seen) == 4:
            stop.set()
        return UpdateResult("current", ExitCode.ALREADY_CURRENT, "current", edition=options.edition)

    waits = []
    real_wait = stop.wait
    stop.wait = lambda delay: waits.append(delay) or real_wait(0)  # no sleeping in the test
    run_schedule(config(data), stop, update=update)
    assert seen == ["city", "asn", "city", "asn"]
    assert waits and waits[0] == 300.0  # neither file exists yet: the empty-volume retry


def test_with_no_reachable_source_asn_stays_empty_and_city_still_installs(data, built, tmp_path):
    """A first start offline: the City file comes from wherever it can (here a file), the ASN
    edition fails every source and leaves no file; the service is still ready and says so."""
    city = tmp_path / "city-v1.mmdb"
    city.write_bytes(built["city"][1])
    cfg = config(data)  # every URL points at a closed port
    assert run_update(cfg, fast(str(city), edition="city")).outcome == "updated"
    failed = run_update(cfg, UpdateOptions(retry_for=0.2, first_retry_wait=0.05, edition="asn"))
    assert failed.outcome == "failed" and [f["source"] for f in failed.failures] == ["maxmind", "dbip"]
    assert not (data / "asn.mmdb").exists()
    from app import create_app
    from tests.conftest import make_config
    client = create_app(make_config(city_db_path=str(data / "city.mmdb"), asn_db_path=str(data / "asn.mmdb"),
                                    city_db_copy_dir=str(tmp_path / "copies"), city_db_max_age_days=3650)).test_client()
    report = client.get("/readyz").get_json()
    assert report["status"] == "ready", report["problems"]
    assert any("ASN" in note and "not installed yet" in note for note in report["notes"])
    assert client.get("/api/v1/lookup/81.2.69.160").get_json()["results"][0]["asn"] is None
