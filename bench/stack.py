"""The real serving stack for the HTTP, memory and cold-start figures: Nginx -> uWSGI -> WSGI app,
started natively on 127.0.0.1 from the repository's own docker/ configs (docker/uwsgi.ini,
docker/start_nginx.py with nginx.conf and site.conf), exactly as the container runs them.

`app_module=None` serves Easy GeoIP (`module` from uwsgi.ini, i.e. app.wsgi:application); the
ceiling passes `bench.trivial_app:application`, which replaces only uWSGI's `module` option on the
command line, so both stacks share every other setting. Two deliberate differences from the
container, both in the environment the configs already read:
  GEOIP_RATE_LIMIT=0  the per-client limit (20 r/s by default) would otherwise time the limiter;
  GEOIP_WORKERS/GEOIP_THREADS  set per figure (the curve and memory figures vary them).
As root, both servers run as `nobody`, like the container's unprivileged user; the City file is
hard-linked (or copied) into the run directory so that user can read it.
"""
from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UWSGI_INI = REPO / "docker" / "uwsgi.ini"
START_NGINX = REPO / "docker" / "start_nginx.py"
UWSGI = Path(sys.executable).with_name("uwsgi")
TRIVIAL_APP = "bench.trivial_app:application"
UNPRIVILEGED = 65534  # nobody / nogroup


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StackFailed(RuntimeError):
    pass


class ServingStack:
    """`with ServingStack(city_path, workers=2) as stack:` then `stack.port`, `stack.get(path)`."""

    def __init__(self, city_path: str | Path, *, app_module: str | None = None, workers: int = 2, threads: int = 8,
                 extra_env: dict | None = None, ready_path: str = "/healthz", ready_timeout: float = 60.0):
        self.city_path = Path(city_path)
        self.app_module = app_module
        self.workers = workers
        self.threads = threads
        self.extra_env = extra_env or {}
        self.ready_path = ready_path
        self.ready_timeout = ready_timeout
        self.port = free_port()
        self.run_dir: Path | None = None
        self.uwsgi: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None
        self.started_at = 0.0
        self.ready_after = None  # seconds from spawning both servers to the first 200 on ready_path

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> "ServingStack":
        self.run_dir = Path(tempfile.mkdtemp(prefix="geoip-bench-"))
        city_link = self.run_dir / "city.mmdb"
        try:
            os.link(self.city_path, city_link)
        except OSError:
            shutil.copyfile(self.city_path, city_link)
        env = dict(os.environ)
        env.update({
            "GEOIP_RUN_DIR": str(self.run_dir),
            "GEOIP_LISTEN": f"127.0.0.1:{self.port}",
            "GEOIP_CITY_DB": str(city_link),
            "GEOIP_WORKERS": str(self.workers),
            "GEOIP_THREADS": str(self.threads),
            "GEOIP_RATE_LIMIT": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        env.update(self.extra_env)
        user = {}
        if os.geteuid() == 0:
            os.chown(self.run_dir, UNPRIVILEGED, UNPRIVILEGED)
            user = {"user": UNPRIVILEGED, "group": UNPRIVILEGED, "extra_groups": []}
            env["HOME"] = str(self.run_dir)
        uwsgi_command = [str(UWSGI), "--ini", str(UWSGI_INI)]
        if self.app_module:
            uwsgi_command += ["--module", self.app_module]
        self._log = open(self.run_dir / "servers.log", "wb")
        self.started_at = time.perf_counter()
        self.uwsgi = subprocess.Popen(uwsgi_command, env=env, cwd=self.run_dir, stdout=subprocess.DEVNULL,
                                      stderr=self._log, start_new_session=True, **user)
        self.nginx = subprocess.Popen([sys.executable, str(START_NGINX)], env=env, cwd=self.run_dir,
                                      stdout=subprocess.DEVNULL, stderr=self._log, start_new_session=True, **user)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = self.started_at + self.ready_timeout
        while time.perf_counter() < deadline:
            for name, process in (("uWSGI", self.uwsgi), ("Nginx", self.nginx)):
                if process.poll() is not None:
                    raise StackFailed(f"{name} exited with {process.returncode}: {self.log_tail()}")
            try:
                status, _ = self.get(self.ready_path, timeout=2)
            except OSError:
                status = None
            if status == 200:
                self.ready_after = time.perf_counter() - self.started_at
                return
            time.sleep(0.005)
        raise StackFailed(f"not ready within {self.ready_timeout:g} s: {self.log_tail()}")

    def stop(self) -> None:
        for process in (self.nginx, self.uwsgi):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in (self.nginx, self.uwsgi):
            if process is not None:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        if getattr(self, "_log", None):
            self._log.close()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- use --------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def worker_pids(self) -> list[int]:
        """uWSGI's workers: the children of its master."""
        return children_of(self.uwsgi.pid)

    def cpu_seconds(self) -> float:
        """CPU time used so far by every uWSGI and Nginx process of this stack (user + system).

        Unlike req/s, CPU per request hardly moves when other work shares the machine.
        """
        groups = {self.uwsgi.pid, self.nginx.pid}
        return sum(cpu for group, cpu in _process_cpu() if group in groups)

    def log_tail(self, limit: int = 2000) -> str:
        try:
            return (self.run_dir / "servers.log").read_bytes()[-limit:].decode(errors="replace")
        except OSError:
            return "(no log)"


def _stat_fields():
    """(pid, fields of /proc/PID/stat after the command name) for every process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                yield int(entry), handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue


def children_of(parent: int) -> list[int]:
    # fields[1] is the parent pid (stat field 4)
    return sorted(pid for pid, fields in _stat_fields() if int(fields[1]) == parent)


_TICKS = os.sysconf("SC_CLK_TCK")


def _process_cpu():
    # fields[2] is the process group (stat field 5); utime and stime are fields 14 and 15
    for _, fields in _stat_fields():
        yield int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICKS
