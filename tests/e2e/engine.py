"""A running Docker engine for the end-to-end tests: use the one that answers, or start dockerd.

No engine is a loud failure (EngineUnavailable), never a skip: `make e2e` must not pass silently.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path


class EngineUnavailable(RuntimeError):
    pass


def engine_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class DockerEngine:
    """`with DockerEngine() as engine:` an engine answers inside; one we started is stopped after."""

    def __init__(self, log_path: Path = Path("/tmp/geoip-e2e-dockerd.log"), start_timeout: float = 60.0):
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "DockerEngine":
        if shutil.which("docker") is None:
            raise EngineUnavailable("no docker client: run `make e2e` as root (it installs docker.io) or install it")
        if engine_answers():
            return self
        dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/bin")
        if dockerd is None:
            raise EngineUnavailable("no Docker engine answers and dockerd is not installed (apt-get install docker.io)")
        if os.geteuid() != 0:
            raise EngineUnavailable("no Docker engine answers, and starting dockerd needs root")
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([dockerd], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while not engine_answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                self.__exit__()
                raise EngineUnavailable(f"dockerd did not come up; its log ends with:\n{tail}")
            time.sleep(1)
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
