"""Hot swap: ten updates in a row while requests keep coming, in-process (Flask, threads) and through
the real stack (supervisord, Nginx, uWSGI workers from docker/). Zero failed requests, never a
garbled answer, old maps released, RSS flat."""
from __future__ import annotations

import gc
import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from app import create_app
from app.config import Config, UpdateConfig
from app.updater.run import UpdateOptions, run_update
from tests.support.fake_update_servers import build_city_db
from tests.support.native_stack import NativeStack

SWAPS = 10
CLIENTS = 4
ADDRESS = "81.2.69.160"  # its record names the version: city "London vN", postal "VN"


class SwapUnderLoad:
    """Clients call `fetch()` -> (ok, version or error text) in a loop while `swap()` installs versions 2..11."""

    def __init__(self, fetch, live: Path, build_dir: Path):
        self.fetch = fetch
        self.live = live
        self.build_dir = build_dir
        self.answers: list[tuple[bool, object]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _client(self) -> None:
        while not self._stop.is_set():
            answer = self.fetch()
            with self._lock:
                self.answers.append(answer)

    def _wait_until_serving(self, version: int, timeout: float = 15.0) -> None:
        """Every client thread and worker answers with `version`: the last 4*CLIENTS answers agree."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                recent = self.answers[-4 * CLIENTS:]
            if len(recent) == 4 * CLIENTS and all(answer == (True, version) for answer in recent):
                return
            time.sleep(0.02)
        raise AssertionError(f"version {version} was not served everywhere within {timeout} s: {recent}")

    def run(self, on_swapped=None) -> Counter:
        threads = [threading.Thread(target=self._client, daemon=True) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            self._wait_until_serving(1)
            with self._lock:
                # Failures while the workers first open the database are not the swap's doing; they
                # are kept apart (and reported) so this test checks what happens during the swaps.
                self.warm_up_failures = [answer for answer in self.answers if not answer[0]]
                self.answers = [answer for answer in self.answers if answer[0]]
            for version in range(2, SWAPS + 2):
                candidate = build_city_db(self.build_dir / f"v{version}.mmdb", version)
                result = run_update(UpdateConfig(city_db_path=str(self.live)), UpdateOptions(source=str(candidate)))
                assert result.outcome == "updated", result.message
                self._wait_until_serving(version)
                if on_swapped:
                    on_swapped(version)
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(10)
        # Known, reported to the lead: app/citydb.py answers 503 to requests racing the very first open.
        assert all("DATABASE_UNAVAILABLE" in str(answer[1]) for answer in self.warm_up_failures), self.warm_up_failures
        failures = [answer for answer in self.answers if not answer[0]]
        assert failures == [], f"{len(failures)} failed requests, e.g. {failures[:3]}"
        versions = Counter(answer[1] for answer in self.answers)
        assert set(versions) == set(range(1, SWAPS + 2)), versions
        return versions


def version_of(document: dict) -> object:
    """The version a lookup answered from, or a description of what is wrong with it."""
    [result] = document["results"]
    city, postal = result["city"]["name"], (result.get("postal") or {}).get("code")
    if not city or not city.startswith("London v") or postal != "V" + city[len("London v"):]:
        return f"garbled: city={city!r} postal={postal!r}"
    if result["country"]["iso_code"] != "GB" or result["timezone"]["name"] != "Europe/London":
        return f"garbled: {result['country']} {result['timezone']['name']}"
    return int(city[len("London v"):])


def interpret(status: int, document) -> tuple[bool, object]:
    if status != 200:
        return False, f"HTTP {status}: {document}"
    version = version_of(document)
    return (isinstance(version, int), version)


@pytest.fixture
def live(tmp_path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    return build_city_db(directory / "city.mmdb", 1)


@pytest.fixture
def build_dir(tmp_path) -> Path:
    directory = tmp_path / "build"
    directory.mkdir()
    return directory


def mapped_database_files(pid: int | str, directory: Path) -> list[str]:
    """Distinct database files under `directory` mapped by the process (deleted or renamed ones
    included; other files there, such as the metrics' multiprocess files, are not databases)."""
    with open(f"/proc/{pid}/maps") as maps:
        return sorted({line.split(None, 5)[5].strip() for line in maps
                       if len(line.split(None, 5)) == 6 and str(directory) in line and ".mmdb" in line})


def rss_kib(pid: int | str) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


# ----------------------------------------------------------------------------- in-process (Flask + threads)


def test_hot_swap_in_process_under_threads(live, build_dir):
    app = create_app(Config(city_db_path=str(live), city_db_check_interval=0.05,
                            city_db_copy_dir=str(live.parent / "copies")))
    local = threading.local()

    def fetch():
        client = getattr(local, "client", None) or app.test_client()
        local.client = client
        try:
            response = client.get(f"/api/v1/lookup/{ADDRESS}")
            return interpret(response.status_code, response.get_json())
        except Exception as exc:  # a failure to count, not to crash the client thread
            return False, repr(exc)

    versions = SwapUnderLoad(fetch, live, build_dir).run()
    assert sum(versions.values()) > 10 * SWAPS
    gc.collect()
    # Only the live file stays mapped (plus at most one the last in-flight request still held).
    assert len(mapped_database_files(os.getpid(), live.parent)) <= 2


# ----------------------------------------------------------------------------- the real stack


@pytest.fixture
def stack(live):
    """supervisord -> Nginx + uWSGI (2 workers x 4 threads) from docker/, on 127.0.0.1, as `nobody`."""
    environment = {"GEOIP_CITY_DB_CHECK_INTERVAL": "0.05", "GEOIP_RATE_LIMIT": "0"}
    with NativeStack(live, env=environment, workers=2, threads=4) as running:
        yield running


@pytest.mark.slow
def test_hot_swap_through_nginx_and_uwsgi_workers(stack, build_dir):
    local = threading.local()
    sessions: list[requests.Session] = []

    def fetch():
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            sessions.append(session)
        try:
            response = session.get(f"{stack.url}/api/v1/lookup/{ADDRESS}", timeout=10)
            return interpret(response.status_code, response.json())
        except Exception as exc:
            return False, repr(exc)

    workers = stack.worker_pids()
    rss: dict[int, list[int]] = {pid: [] for pid in workers}

    def measure(version: int) -> None:
        for pid in workers:
            rss[pid].append(rss_kib(pid))

    # The stack serves its own copy of the database: that is the live file the updater replaces.
    try:
        versions = SwapUnderLoad(fetch, stack.city_db, build_dir).run(on_swapped=measure)
    finally:
        for session in sessions:  # no idle keep-alive connections left for the stack's shutdown
            session.close()
    assert sum(versions.values()) > 10 * SWAPS
    assert stack.worker_pids() == workers  # the swaps happened without a worker restart
    for pid in workers:
        mapped = mapped_database_files(pid, stack.city_db.parent)
        assert len(mapped) <= 2, (pid, mapped)  # old maps released, not piling up one per swap
        # RSS does not grow with each swap. The bound is generous (4 MiB a swap from the 2nd to the
        # last; measured: well under 1 MiB a swap): allocator and cache noise on a busy machine must
        # not fail it, a worker keeping something per version must.
        growth = rss[pid][-1] - rss[pid][1]
        assert growth < 4 * 1024 * (SWAPS - 2), (pid, rss[pid])
