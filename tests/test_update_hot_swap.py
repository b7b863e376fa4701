"""Hot swap: ten updates in a row while requests keep coming, in-process (Flask, threads) and through
real uWSGI workers (docker/uwsgi.ini). Zero failed requests, never a garbled answer, old maps released."""
from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
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

ROOT = Path(__file__).resolve().parent.parent
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
    """Distinct files under `directory` mapped by the process (deleted or renamed ones included)."""
    with open(f"/proc/{pid}/maps") as maps:
        return sorted({line.split(None, 5)[5].strip() for line in maps
                       if len(line.split(None, 5)) == 6 and str(directory) in line})


def rss_kib(pid: int | str) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


# ----------------------------------------------------------------------------- in-process (Flask + threads)


def test_hot_swap_in_process_under_threads(live, build_dir):
    app = create_app(Config(city_db_path=str(live), city_db_check_interval=0.05))
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


# ----------------------------------------------------------------------------- real uWSGI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _workers(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as children:
        return [int(pid) for pid in children.read().split()]


@pytest.fixture
def uwsgi_server(live, tmp_path):
    """docker/uwsgi.ini as the container runs it (2 workers x 4 threads), plus an HTTP socket on 127.0.0.1."""
    port = _free_port()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {**os.environ, "GEOIP_CITY_DB": str(live), "GEOIP_CITY_DB_CHECK_INTERVAL": "0.05",
           "GEOIP_RUN_DIR": str(run_dir), "GEOIP_WORKERS": "2", "GEOIP_THREADS": "4"}
    log = open(tmp_path / "uwsgi.log", "wb")
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "uwsgi"), "--ini", str(ROOT / "docker" / "uwsgi.ini"),
                                "--http-socket", f"127.0.0.1:{port}"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/healthz", timeout=2).status_code == 200 and len(_workers(process.pid)) == 2:
                    break
            except requests.RequestException:  # not listening yet, or a worker still loading the app
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("uWSGI did not start: " + (tmp_path / "uwsgi.log").read_text()[-2000:])
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow
def test_hot_swap_through_uwsgi_workers(live, build_dir, uwsgi_server):
    url, master = uwsgi_server

    def fetch():
        try:
            # A new connection each time: uWSGI's --http-socket (test-only; Nginx speaks uwsgi to it) does
            # not keep connections alive, and a reused one would fail for reasons unrelated to the swap.
            response = requests.get(f"{url}/api/v1/lookup/{ADDRESS}", timeout=10)
            return interpret(response.status_code, response.json())
        except Exception as exc:
            return False, repr(exc)

    workers = _workers(master)
    rss: dict[int, list[int]] = {pid: [] for pid in workers}

    def measure(version: int) -> None:
        for pid in workers:
            rss[pid].append(rss_kib(pid))

    versions = SwapUnderLoad(fetch, live, build_dir).run(on_swapped=measure)
    assert sum(versions.values()) > 10 * SWAPS
    assert _workers(master) == workers  # the swaps happened without a worker restart
    for pid in workers:
        mapped = mapped_database_files(pid, live.parent)
        assert len(mapped) <= 2, (pid, mapped)  # old maps released, not piling up one per swap
        # RSS does not grow with each swap: from the 2nd to the 10th swap, less than 1 MiB per swap.
        growth = rss[pid][-1] - rss[pid][1]
        assert growth < 1024 * (SWAPS - 2), (pid, rss[pid])
