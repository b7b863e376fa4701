"""A real Prometheus server (Debian's `prometheus`) on 127.0.0.1, with its own config and data
directory, scraping one target every second; queried through its HTTP API.

    with PrometheusServer(target="127.0.0.1:8080") as prometheus:
        prometheus.wait_for_scrape()
        prometheus.value('sum(geoip_lookups_total)')
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from tests.support.native_stack import free_port

BINARY = "/usr/bin/prometheus"
SCRAPE_INTERVAL_S = 1


def available() -> bool:
    return os.access(BINARY, os.X_OK)


class PrometheusServer:
    def __init__(self, target: str, metrics_path: str = "/metrics", job: str = "geoip"):
        self.target = target
        self.metrics_path = metrics_path
        self.job = job
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "PrometheusServer":
        self.directory = Path(tempfile.mkdtemp(prefix="geoip-prometheus-"))
        config = self.directory / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "scrape_timeout": "900ms"},
            "scrape_configs": [{"job_name": self.job, "metrics_path": self.metrics_path,
                                "static_configs": [{"targets": [self.target]}]}],
        }))
        self._log = open(self.directory / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [BINARY, f"--config.file={config}", f"--storage.tsdb.path={self.directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait(lambda: self._get("/-/ready") is not None, 60, "Prometheus ready")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        return (self.directory / "prometheus.log").read_text(errors="replace")

    # -- the HTTP API --------------------------------------------------------------------------
    def _get(self, path: str, **params) -> dict | None:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                text = response.read().decode()
        except OSError:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return {"text": text}

    def query(self, expression: str, at: float | None = None) -> list[dict]:
        params = {"query": expression}
        if at is not None:
            params["time"] = f"{at:.3f}"
        answer = self._get("/api/v1/query", **params)
        assert answer and answer.get("status") == "success", answer
        return answer["data"]["result"]

    def value(self, expression: str) -> float | None:
        """The instant value of a single-series expression (None when it has no series)."""
        result = self.query(expression)
        return float(result[0]["value"][1]) if result else None

    def range(self, expression: str, start: float, end: float, step: float = SCRAPE_INTERVAL_S) -> list[float]:
        answer = self._get("/api/v1/query_range", query=expression, start=f"{start:.3f}", end=f"{end:.3f}",
                           step=f"{step:g}")
        assert answer and answer.get("status") == "success", answer
        result = answer["data"]["result"]
        return [float(value) for _, value in result[0]["values"]] if result else []

    def targets_up(self) -> bool:
        return self.value(f'up{{job="{self.job}"}}') == 1.0

    def last_scrape(self) -> float | None:
        answer = self._get("/api/v1/targets")
        targets = (answer or {}).get("data", {}).get("activeTargets", [])
        stamps = [target.get("lastScrape") for target in targets if target.get("health") == "up"]
        return _parse_time(stamps[0]) if stamps else None

    def wait_for_scrape(self, after: float | None = None, timeout: float = 60) -> None:
        """Until a successful scrape that started after `after` (default: now) is stored."""
        after = time.time() if after is None else after
        self._wait(lambda: (self.last_scrape() or 0) > after and self.targets_up(), timeout,
                   "a successful scrape")
        time.sleep(0.2)  # the scrape's samples are appended just after its timestamp is recorded

    def wait_for_value(self, expression: str, expected: float, timeout: float = 60) -> float:
        found = [None]

        def reached():
            found[0] = self.value(expression)
            return found[0] == expected

        try:
            self._wait(reached, timeout, f"{expression} == {expected}")
        except AssertionError:
            raise AssertionError(f"{expression} is {found[0]}, expected {expected}") from None
        return found[0]

    @staticmethod
    def _wait(condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:g} s")
            time.sleep(0.2)


def _parse_time(text: str) -> float:
    # RFC 3339 with nanoseconds, e.g. 2026-12-01T21:00:00.123456789Z
    import datetime as dt

    head, _, fraction = text.rstrip("Z").partition(".")
    stamp = dt.datetime.fromisoformat(head).replace(tzinfo=dt.timezone.utc).timestamp()
    offset = 0.0
    if fraction:
        digits = "".join(ch for ch in fraction if ch.isdigit())
        offset = float("0." + digits) if digits else 0.0
    return stamp + offset
