"""docker-compose.yml brought up for real under a throwaway project name, on a free 127.0.0.1 port.

Settings go through a private env file (never the developer's .env). `down -v` always runs on exit,
so the project's containers, networks and volumes are gone even when a check failed.
"""
from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.native_stack import free_port

REPO = Path(__file__).resolve().parents[2]
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_CERT = REPO / "docker" / "certs" / "host-ca-bundle.crt"


class ComposeError(RuntimeError):
    pass


def trust_host_certificates() -> None:
    """This machine reaches PyPI and the apt mirror through a TLS-intercepting proxy: the builds
    trust its CA the way docs/deployment.md tells users to, via docker/certs/*.crt (git-ignored)."""
    if HOST_CA_BUNDLE.is_file():
        BUILD_CERT.write_bytes(HOST_CA_BUNDLE.read_bytes())


class ComposeStack:
    def __init__(self, settings: dict[str, str] | None = None):
        self.project = f"geoipe2e{os.getpid()}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.reader_password = secrets.token_hex(16)
        self.settings = {
            "GEOIP_BIND": "127.0.0.1",
            "GEOIP_PORT": str(self.port),
            "TZ_READER_PASSWORD": self.reader_password,
            **(settings or {}),
        }
        self._env_dir = tempfile.mkdtemp(prefix="geoip-e2e-env-")
        self.env_file = Path(self._env_dir) / "e2e.env"
        self.env_file.write_text("".join(f"{key}={value}\n" for key, value in self.settings.items()))
        command = os.environ.get("GEOIP_COMPOSE", "docker-compose")
        self.base = [*shlex.split(command), "--project-name", self.project, "--env-file", str(self.env_file),
                     "--file", str(REPO / "docker-compose.yml")]

    def compose(self, *args: str, timeout: float = 1800, check: bool = True, input: str | None = None
                ) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.base, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              input=input)
        if check and done.returncode != 0:
            raise ComposeError(f"compose {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def container(self, service: str) -> str:
        ids = self.compose("ps", "-q", service).stdout.split()
        if not ids:
            raise ComposeError(f"no container for {service}")
        return ids[0]

    def exec(self, service: str, *command: str, check: bool = True, user: str | None = None
             ) -> subprocess.CompletedProcess:
        extra = ["--user", user] if user else []
        done = subprocess.run(["docker", "exec", *extra, self.container(service), *command],
                              capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise ComposeError(f"{service}: {command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def health(self, service: str) -> str:
        state = json.loads(subprocess.run(["docker", "inspect", "--format", "{{json .State}}", self.container(service)],
                                          capture_output=True, text=True, timeout=60, check=True).stdout)
        return (state.get("Health") or {}).get("Status") or state.get("Status")

    def wait_healthy(self, services: tuple[str, ...] = ("tz_world", "app"), timeout: float = 900) -> float:
        started = time.monotonic()
        deadline = started + timeout
        while True:
            states = {}
            for service in services:
                try:
                    states[service] = self.health(service)
                except (ComposeError, subprocess.CalledProcessError):
                    states[service] = "missing"
            if all(state == "healthy" for state in states.values()):
                return time.monotonic() - started
            if time.monotonic() > deadline:
                raise ComposeError(f"not healthy after {timeout:.0f} s: {states}\n{self.logs()}")
            time.sleep(2)

    def logs(self, tail: int = 60) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), check=False, timeout=120).stdout

    def network(self, name: str) -> str:
        return f"{self.project}_{name}"

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "30", check=False, timeout=300)

    def close(self) -> None:
        try:
            self.down()
        finally:
            self.env_file.unlink(missing_ok=True)
            os.rmdir(self._env_dir)
