"""The honest HTTP ceiling: a plain stack built by the bench from the same binaries, none of our
configs. Nginx with a minimal config (no access log, no headers, no rate limit, no gzip) in front
of uWSGI (2 processes, no threads, no logging, no master-side options) over a unix socket,
running one WSGI callable: bench/trivial_app.py (the ceiling) or bench/naive_peer.py (the naive
Flask + geoip2 peer). Runs as the calling user on 127.0.0.1, in a temporary directory.

    with PlainStack("bench.trivial_app:application") as stack:
        stack.base_url, stack.get("/x"), stack.cpu_seconds()
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.native_stack import free_port, http_request

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
_TICKS = os.sysconf("SC_CLK_TCK")

NGINX_CONF = """worker_processes auto;
pid nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    access_log off;
    upstream app { server unix:%(socket)s; }
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            include /etc/nginx/uwsgi_params;
            uwsgi_pass app;
        }
    }
}
"""


def _nginx() -> str:
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin") or "nginx"


class PlainStack:
    def __init__(self, wsgi_module: str, *, workers: int = 2, env: dict | None = None):
        self.wsgi_module = wsgi_module
        self.workers = workers
        self.threads = 1
        self.env = dict(env or {})
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.directory: Path | None = None
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> "PlainStack":
        self.directory = Path(tempfile.mkdtemp(prefix="geoip-plain-stack-"))
        os.chmod(self.directory, 0o755)
        socket_path = self.directory / "uwsgi.sock"
        (self.directory / "conf").mkdir()
        (self.directory / "conf" / "nginx.conf").write_text(NGINX_CONF % {"socket": socket_path, "port": self.port})
        log = open(self.directory / "stack.log", "ab")
        env = {**os.environ, **self.env}
        try:
            self.processes.append(subprocess.Popen(
                [str(VENV_BIN / "uwsgi"), "--master", "--processes", str(self.workers), "--socket", str(socket_path),
                 "--chmod-socket=666", "--module", self.wsgi_module, "--pythonpath", str(REPO), "--chdir", str(REPO),
                 "--disable-logging", "--need-app", "--die-on-term", "--lazy-apps", "--buffer-size", "16384"],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
            self.processes.append(subprocess.Popen(
                [_nginx(), "-p", f"{self.directory}/", "-c", "conf/nginx.conf", "-e", "stderr", "-g", "daemon off;"],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True))
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"plain stack: {process.args[0]} exited:\n{self.log()[-2000:]}")
            try:
                if self.get("/healthz")[0] in (200, 404) and len(self._uwsgi_workers()) == self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"plain stack not ready:\n{self.log()[-2000:]}")

    def __exit__(self, *exc) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM if process is self.processes[0] else signal.SIGQUIT)
                    process.wait(30)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        try:
            return (self.directory / "stack.log").read_text(errors="replace")
        except OSError:
            return ""

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        status, _, body = http_request(self.port, path, timeout=timeout)
        return status, body

    def _uwsgi_workers(self) -> list[int]:
        master = self.processes[0].pid
        try:
            with open(f"/proc/{master}/task/{master}/children") as children:
                return [int(pid) for pid in children.read().split()]
        except OSError:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        queue = [process.pid for process in self.processes]
        while queue:
            pid = queue.pop()
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/task/{pid}/children") as children:
                    queue += [int(child) for child in children.read().split()]
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / _TICKS
        return total
