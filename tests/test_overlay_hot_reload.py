"""The overlay replaced by a rename under load, through the real stack (supervisord, uWSGI
workers, Nginx from docker/): every worker serves the new entries by itself, a bad file is
refused while the last good overlay keeps serving, and no request fails meanwhile."""
from __future__ import annotations

import http.client
import json
import os
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.load import Request, SteadyLoad
from tests.support.native_stack import NativeStack

pytestmark = pytest.mark.slow

ADDRESS = "10.8.1.2"  # reserved: answered only because the overlay covers it


def generation(n: int) -> str:
    return f"# generation {n}\n10.8.0.0/16,NL,NL-NH,Gen{n},\n81.2.69.160/32,GB,GB-ENG,Office{n},\n"


def replace(directory: Path, name: str, text: str) -> None:
    temporary = directory / f".{name}.tmp"
    temporary.write_text(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, directory / name)


def city(port: int, target: str = ADDRESS) -> tuple[int, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", f"/api/v1/lookup/{target}")
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    return response.status, (body["results"][0]["city"]["name"] if response.status == 200 else None)


def wait_for(port: int, name: str, consecutive: int = 40, timeout: float = 20.0) -> None:
    """Until `consecutive` fresh connections in a row (spread over the workers) answer `name`."""
    deadline, streak, status, seen = time.monotonic() + timeout, 0, None, None
    while streak < consecutive:
        assert time.monotonic() < deadline, (f"{name} not served by every worker within {timeout} s "
                                             f"(last answer: {status} {seen})")
        status, seen = city(port)
        streak = streak + 1 if (status, seen) == (200, name) else 0


def test_overlay_reload_in_every_worker_with_no_failed_request(city_db):
    directory = Path(tempfile.mkdtemp(prefix="geoip-overlay-"))
    os.chmod(directory, 0o755)  # the stack runs as an unprivileged user
    replace(directory, "offices.csv", generation(0))
    environment = {"GEOIP_OVERLAY": str(directory), "GEOIP_CITY_DB_CHECK_INTERVAL": "0.1", "GEOIP_RATE_LIMIT": "0"}
    try:
        with NativeStack(city_db, env=environment, workers=2, threads=4) as stack:
            wait_for(stack.port, "Gen0")
            requests = [Request(f"/api/v1/lookup/{ADDRESS}", "overlay"), Request("/api/v1/lookup/81.2.69.160", "ip"),
                        Request("/api/v1/lookup/2.2.3.4", "plain")]
            with SteadyLoad(stack.port, requests, threads=4, keep_bodies="all") as load:
                load.wait_for_requests(50)
                for n in range(1, 6):
                    replace(directory, "offices.csv", generation(n))
                    wait_for(stack.port, f"Gen{n}")
                load.mark("bad file")
                replace(directory, "offices.csv", generation(6) + "10.9.0.0/16,QQ,,,\n")
                time.sleep(0.5)  # several check intervals: every worker has seen and refused it
                wait_for(stack.port, "Gen5")
                ready = json.loads(_get(stack.port, "/readyz"))
                assert ready["status"] == "degraded"
                assert ready["overlay"]["files"][0]["entries"] == 2
                assert "line 4: unknown country code 'QQ'" in ready["overlay"]["files"][0]["problems"][0]
                replace(directory, "offices.csv", generation(7))
                wait_for(stack.port, "Gen7")
            report = load.report
    finally:
        for entry in directory.iterdir():
            entry.unlink()
        directory.rmdir()
    assert report.count(lambda sample: sample.status != 200) == 0, report.failures()[:3]
    names = {json.loads(sample.body)["results"][0]["city"]["name"] for sample in report.select(kind="overlay")}
    assert names <= {f"Gen{n}" for n in (0, 1, 2, 3, 4, 5, 7)} and {"Gen0", "Gen7"} <= names
    offices = {json.loads(sample.body)["results"][0]["city"]["name"] for sample in report.select(kind="ip")}
    assert offices <= {f"Office{n}" for n in (0, 1, 2, 3, 4, 5, 7)}
    assert len(report.select()) > 200


def _get(port: int, path: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        return connection.getresponse().read()
    finally:
        connection.close()
