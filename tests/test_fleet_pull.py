"""One download feeds every replica: the updater's publish endpoint and the replicas' puller, with
real HTTP servers on 127.0.0.1 (app/fleet, docs/scaling.md).

The updater side is the real thing: databases installed by `run_update` (so its state vouches for
them) and served by `PublishServer`. Replicas are directories with their own live file; the
puller's checks are update-db's, so a damaged, foreign or older file never replaces a replica's.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from app.citydb import CityDatabase
from app.config import Config, ConfigError, PullConfig, UpdateConfig
from app.fleet.catalog import fleet_databases
from app.fleet.pull import PullState, pull_database, pull_once
from app.fleet.publish import PublishServer
from app.fleet.status import pull_readiness
from app.updater.http import HttpClient
from app.updater.lock import UpdateLock
from app.updater.run import UpdateOptions, run_update
from app.services import Services
from tests.support.fake_update_servers import FakeHttpServer, Reply, build_city_db

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "testdata" / "maxmind"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Updater:
    """The updater's volume, filled by run_update, and its publish endpoint on a free port."""

    def __init__(self, root: Path):
        self.live = root / "updater" / "city.mmdb"
        self.live.parent.mkdir(parents=True)
        self.config = UpdateConfig(city_db_path=str(self.live))
        self.builds = root / "builds"
        self.builds.mkdir()
        self.server = PublishServer(fleet_databases(self.config.database_paths), ("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.port}"

    def install(self, version: int, **kwargs) -> Path:
        source = build_city_db(self.builds / f"v{version}.mmdb", version, **kwargs)
        result = run_update(self.config, UpdateOptions(source=str(source), retry_for=0))
        assert result.outcome == "updated", result
        return source

    def index(self) -> dict:
        return {entry["name"]: entry for entry in requests.get(self.url + "/v1/databases", timeout=10).json()["databases"]}


@pytest.fixture
def updater(tmp_path):
    updater = Updater(tmp_path)
    with updater.server:
        yield updater


def replica(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    return directory / "city.mmdb"


def pull(live: Path, url: str):
    http = HttpClient(timeout=10)
    try:
        return pull_database(fleet_databases((("city", str(live)),))[0], url, http)
    finally:
        http.close()


def leftovers(live: Path) -> list[str]:
    return sorted(p.name for p in live.parent.iterdir() if p.name.endswith(".tmp"))


# ----------------------------------------------------------------------------- the publish endpoint

def test_nothing_is_published_before_the_updater_has_a_verified_file(updater):
    answer = requests.get(updater.url + "/v1/databases/city", timeout=10)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_PUBLISHED"
    assert updater.index() == {}
    assert requests.get(updater.url + "/healthz", timeout=10).status_code == 200
    unknown = requests.get(updater.url + "/v1/databases/nope", timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "UNKNOWN_DATABASE"


def test_the_live_file_is_served_with_a_sha256_etag_and_conditional_answers(updater):
    updater.install(1)
    digest = sha256(updater.live)
    answer = requests.get(updater.url + "/v1/databases/city", timeout=10)
    assert answer.status_code == 200
    assert answer.content == updater.live.read_bytes()
    assert answer.headers["ETag"] == f'"{digest}"'
    assert int(answer.headers["Content-Length"]) == updater.live.stat().st_size
    last_modified = answer.headers["Last-Modified"]
    assert last_modified.endswith(" GMT")

    again = requests.get(updater.url + "/v1/databases/city", headers={"If-None-Match": f'"{digest}"'}, timeout=10)
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == f'"{digest}"'
    assert requests.get(updater.url + "/v1/databases/city", headers={"If-None-Match": '"0000", *'},
                        timeout=10).status_code == 304
    assert requests.get(updater.url + "/v1/databases/city", headers={"If-Modified-Since": last_modified},
                        timeout=10).status_code == 304
    # If-None-Match wins over If-Modified-Since (RFC 9110): another file is a full answer.
    other = requests.get(updater.url + "/v1/databases/city",
                         headers={"If-None-Match": '"' + "0" * 64 + '"', "If-Modified-Since": last_modified}, timeout=10)
    assert other.status_code == 200 and other.content == updater.live.read_bytes()
    head = requests.head(updater.url + "/v1/databases/city", timeout=10)
    assert head.status_code == 200 and head.content == b"" and head.headers["ETag"] == f'"{digest}"'

    entry = updater.index()["city"]
    assert entry["sha256"] == digest and entry["size"] == updater.live.stat().st_size
    assert entry["build_epoch"] == 1_700_000_000 + 86400
    assert entry["transfers"] == 2 and entry["not_modified"] == 3


def test_a_file_changed_behind_the_updaters_back_is_not_published(updater):
    updater.install(1)
    # Garbage written into the live file in place (not by update-db): not vouched for, not served.
    with open(updater.live, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\0" * 4096)
    answer = requests.get(updater.url + "/v1/databases/city", timeout=10)
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "NOT_VERIFIED"
    # The next successful update-db publishes again.
    updater.install(2)
    assert requests.get(updater.url + "/v1/databases/city", timeout=10).status_code == 200


def test_publish_listen_setting():
    assert UpdateConfig.from_env({}).publish_listen is None
    assert UpdateConfig.from_env({"PUBLISH_LISTEN": "8081"}).publish_listen == ("0.0.0.0", 8081)
    assert UpdateConfig.from_env({"PUBLISH_LISTEN": "127.0.0.1:9000"}).publish_listen == ("127.0.0.1", 9000)
    assert UpdateConfig.from_env({"PUBLISH_LISTEN": "[::]:8081"}).publish_listen == ("::", 8081)
    for bad in ("nope:80", "0.0.0.0:0", "0.0.0.0:99999", "x"):
        with pytest.raises(ConfigError, match="PUBLISH_LISTEN"):
            UpdateConfig.from_env({"PUBLISH_LISTEN": bad})


# ----------------------------------------------------------------------------- the puller

def test_replicas_pull_once_then_ask_conditionally(tmp_path, updater):
    updater.install(1)
    replicas = [replica(tmp_path, f"replica{i}") for i in range(3)]
    for live in replicas:
        result = pull(live, updater.url)
        assert result.outcome == "updated", result
        assert sha256(live) == sha256(updater.live)
        assert oct(live.stat().st_mode & 0o777) == "0o644"
    for live in replicas:
        result = pull(live, updater.url)
        assert result.outcome == "current", result
    entry = updater.index()["city"]
    assert (entry["transfers"], entry["not_modified"]) == (3, 3)  # one transfer per replica, then 304s
    state = PullState.load(str(replicas[0]))
    assert state.last_outcome == "current" and state.sha256 == sha256(updater.live) and state.last_success
    for live in replicas:
        assert leftovers(live) == []


def test_a_new_build_reaches_a_replica_and_its_workers_swap(tmp_path, updater):
    updater.install(1)
    live = replica(tmp_path, "replica")
    assert pull(live, updater.url).outcome == "updated"
    worker = CityDatabase(str(live), check_interval=0.05, copy_dir=str(tmp_path / "copies"))
    assert worker.info.build_epoch == 1_700_000_000 + 86400
    updater.install(2)
    result = pull(live, updater.url)
    assert result.outcome == "updated" and result.build_epoch == 1_700_000_000 + 2 * 86400
    time.sleep(0.1)  # past the workers' check interval
    assert worker.info.build_epoch == 1_700_000_000 + 2 * 86400
    assert os.path.exists(str(live) + ".previous")  # update-db's install: the replaced file is kept


def test_a_local_file_placed_otherwise_is_recognised_by_its_hash(tmp_path, updater):
    updater.install(1)
    live = replica(tmp_path, "replica")
    live.write_bytes(updater.live.read_bytes())  # e.g. copied by hand, no pull state
    assert pull(live, updater.url).outcome == "current"
    assert updater.index()["city"]["transfers"] == 0


def lying_publisher(server: FakeHttpServer, body: bytes, etag: str | None) -> str:
    headers = {"ETag": etag} if etag else {}
    server.routes["/v1/databases/city"] = lambda request: Reply(200, body, headers)
    return server.base_url


@pytest.mark.parametrize("case", ["garbage", "not-city", "damaged-in-transit", "no-etag", "broken-tree", "older"])
def test_a_file_that_fails_verification_never_replaces_the_replicas(tmp_path, case):
    live = replica(tmp_path, "replica")
    build_city_db(live, 5)
    before = live.read_bytes()
    good = build_city_db(tmp_path / "v9.mmdb", 9).read_bytes()
    bodies = {
        "garbage": (b"\x00garbage" * 5000, None),
        "not-city": ((SHARED / "GeoLite2-ASN-Test.mmdb").read_bytes(), None),
        "damaged-in-transit": (good[:-10] + b"0123456789", hashlib.sha256(good).hexdigest()),
        "no-etag": (good, ""),
        "broken-tree": ((SHARED / "GeoIP2-City-Test-Invalid-Node-Count.mmdb").read_bytes(), None),
        "older": (build_city_db(tmp_path / "v1.mmdb", 1).read_bytes(), None),
    }
    body, announced = bodies[case]
    etag = "" if announced == "" else f'"{announced or hashlib.sha256(body).hexdigest()}"'
    with FakeHttpServer() as server:
        result = pull(live, lying_publisher(server, body, etag or None))
    expected = {"garbage": ("refused", "INVALID_DATABASE"), "not-city": ("refused", "INVALID_DATABASE"),
                "damaged-in-transit": ("refused", "CHECKSUM_MISMATCH"), "no-etag": ("failed", "SOURCE_ERROR"),
                "broken-tree": ("refused", "INVALID_DATABASE"), "older": ("refused", "NOT_NEWER")}[case]
    assert (result.outcome, result.error) == expected, result
    assert live.read_bytes() == before
    assert leftovers(live) == []
    state = PullState.load(str(live))
    assert state.last_outcome == expected[0] and state.last_error_code == expected[1]


def test_a_replica_whose_updater_is_down_serves_what_it_has_and_says_so(tmp_path, updater):
    updater.install(1)
    live = replica(tmp_path, "replica")
    assert pull(live, updater.url).outcome == "updated"
    updater.server.stop()
    result = pull(live, updater.url)
    assert (result.outcome, result.error) == ("failed", "NETWORK_ERROR")
    assert sha256(live) == sha256(updater.live)

    config = Config(city_db_path=str(live), city_db_copy_dir=str(tmp_path / "copies"),
                    pull=PullConfig(url=updater.url, database_paths=(("city", str(live)),)))
    report = Services(config).readiness()
    assert report["status"] == "degraded" and report["database"]["loaded"] is True
    city = report["pull"]["databases"]["city"]
    assert city["state"] == "failing" and city["error"] == "NETWORK_ERROR" and city["last_success"]


def test_nothing_published_yet_is_not_the_replicas_trouble(tmp_path, updater):
    live = replica(tmp_path, "replica")
    result = pull(live, updater.url)  # the updater has no file yet (an optional ASN file, a first start)
    assert (result.outcome, result.error, result.ok) == ("unpublished", "NOT_PUBLISHED", True) and not live.exists()
    config = PullConfig(url=updater.url, database_paths=(("city", str(live)),))
    readiness = pull_readiness(config)
    assert readiness["ok"] is True and readiness["databases"]["city"]["state"] == "unpublished"


def test_a_replica_with_nothing_is_not_ready(tmp_path):
    live = replica(tmp_path, "replica")
    with FakeHttpServer() as server:
        server.routes["/v1/databases/city"] = lambda request: Reply(503, b'{"error": {"code": "NOT_VERIFIED"}}')
        result = pull(live, server.base_url)
    assert result.outcome == "failed" and not live.exists()
    config = Config(city_db_path=str(live), city_db_copy_dir=str(tmp_path / "copies"),
                    pull=PullConfig(url=server.base_url, database_paths=(("city", str(live)),)))
    report = Services(config).readiness()
    assert report["status"] == "unavailable"
    assert report["pull"]["databases"]["city"]["state"] == "failing"


def test_readiness_of_the_puller_over_time(tmp_path):
    live = replica(tmp_path, "replica")
    config = PullConfig(url="http://updater:8081", database_paths=(("city", str(live)),), interval=30)
    assert pull_readiness(config)["databases"]["city"]["state"] == "pending"
    PullState(last_check=1000.0, last_outcome="current", last_success=1000.0).save(str(live))
    assert pull_readiness(config, now=1100.0)["ok"] is True
    stalled = pull_readiness(config, now=1000.0 + 3 * 30 + 61)
    assert stalled["databases"]["city"]["state"] == "stalled" and stalled["ok"] is False


def test_pullers_sharing_a_volume_take_turns(tmp_path, updater):
    updater.install(1)
    live = replica(tmp_path, "replica")
    with UpdateLock(str(live)):
        result = pull(live, updater.url)
    assert result.outcome == "skipped" and result.ok and not live.exists()
    assert pull(live, updater.url).outcome == "updated"


def test_pull_once_iterates_over_the_configured_databases(tmp_path, updater):
    updater.install(1)
    live = replica(tmp_path, "replica")
    results = pull_once(PullConfig(url=updater.url, database_paths=(("city", str(live)),)))
    assert [(r.database, r.outcome) for r in results] == [("city", "updated")]
    with pytest.raises(ValueError, match="no verification"):
        fleet_databases((("weather", "/x"),))


def test_pull_settings():
    assert PullConfig.from_env({}) is None
    assert Config.from_env({}).pull is None
    config = PullConfig.from_env({"DB_PULL_URL": "http://updater:8081/", "DB_PULL_INTERVAL": "2m",
                                  "GEOIP_CITY_DB": "/data/city.mmdb"})
    assert config.url == "http://updater:8081" and config.interval == 120
    assert config.database_paths == (("city", "/data/city.mmdb"),)
    assert Config.from_env({"DB_PULL_URL": "updater:8081"}).pull.url == "https://updater:8081"
    with pytest.raises(ConfigError, match="DB_PULL_INTERVAL"):
        PullConfig.from_env({"DB_PULL_URL": "http://u", "DB_PULL_INTERVAL": "0s"})


def test_pull_db_command(tmp_path, updater):
    updater.install(1)
    live = replica(tmp_path, "replica")
    env = {**os.environ, "GEOIP_CITY_DB": str(live)}
    env.pop("DB_PULL_URL", None)
    idle = subprocess.run([sys.executable, "cli.py", "pull-db", "--schedule"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert idle.returncode == 0 and "DB_PULL_URL is not set" in idle.stderr
    once = subprocess.run([sys.executable, "cli.py", "pull-db"], cwd=ROOT, env={**env, "DB_PULL_URL": updater.url},
                          capture_output=True, text=True, timeout=60)
    assert once.returncode == 0 and once.stdout.startswith("city: updated"), once.stdout + once.stderr
    assert sha256(live) == sha256(updater.live)
    down = subprocess.run([sys.executable, "cli.py", "pull-db"], cwd=ROOT,
                          env={**env, "DB_PULL_URL": "http://127.0.0.1:9"}, capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "city: failed" in down.stdout
