"""The real serving stack for the HTTP, batch, memory and cold-start figures.

tests/support/native_stack.NativeStack runs the container's stack natively on 127.0.0.1:
supervisord -> uWSGI + Nginx from the repository's docker/ configs (supervisord.conf, uwsgi.ini,
start_nginx.py, nginx.conf, site.conf), as `nobody`. This module adds what the bench needs:

- Our trivial app: the same stack serving bench/trivial_app.py (NativeStack's `wsgi_module`: the
  real uWSGI with the same arguments plus `--module`; the experiments use their own module the
  same way). Every other setting (workers, threads, socket, buffers, Nginx) is the production
  one, and nothing in the production app or configs knows it exists.
- Our configs with one choice changed that is no setting (unix socket, headers, buffers):
  `config_edits` (bench/config_edits.py), NativeStack's modified copy of docker/.
- GEOIP_RATE_LIMIT=0: the per-client limit (20 r/s by default) would otherwise time the limiter.
- Workers and threads as in production unless a figure varies them: docker/uwsgi.ini's
  defaults (lookups pool: one worker per core, one thread; names pool: one worker, 64 threads),
  left unset so that the ini decides.
- Readiness polled every 5 ms on a chosen path, timed from the spawn of supervisord, for the
  cold-start figure; CPU time of the whole stack, for CPU per request.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from tests.support.native_stack import NativeStack, StackError, http_request

REPO = Path(__file__).resolve().parent.parent
TRIVIAL_APP = "bench.trivial_app:application"
_TICKS = os.sysconf("SC_CLK_TCK")

__all__ = ["ServingStack", "StackError", "REPO"]


class ServingStack(NativeStack):
    """`with ServingStack(city_path, ceiling=False) as stack:` then `stack.base_url`, `stack.get(path)`."""

    def __init__(self, city_path, *, ceiling: bool = False, workers: int | None = None,
                 threads: int | None = None, ready_path: str = "/healthz", env: dict | None = None,
                 wsgi_module: str | None = None, config_edits: dict | None = None):
        """`ceiling=True` serves the trivial app; `wsgi_module` any other bench module (experiments);
        `config_edits` runs from an edited copy of docker/ (bench/config_edits.py)."""
        environment = {"GEOIP_RATE_LIMIT": "0"}
        self.ceiling = ceiling
        environment.update(env or {})
        super().__init__(city_path, env=environment, workers=workers, threads=threads,
                         wsgi_module=TRIVIAL_APP if ceiling else wsgi_module, config_edits=config_edits)
        self.ready_path = ready_path
        self.spawned_at = 0.0
        self.ready_after: float | None = None  # seconds from spawning supervisord to the first 200

    @property
    def base_url(self) -> str:
        return self.url

    def _hand_over(self, run_dir: Path) -> None:
        super()._hand_over(run_dir)
        self.spawned_at = time.perf_counter()  # NativeStack spawns supervisord right after this

    def wait_ready(self, path: str | None = None) -> None:
        path = path or self.ready_path
        deadline = self.spawned_at + self.ready_timeout
        while True:
            if self.process.poll() is not None:
                raise StackError(f"supervisord exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if self._status(path) == 200:
                self.ready_after = time.perf_counter() - self.spawned_at
                break
            if time.perf_counter() > deadline:
                raise StackError(f"{path} not 200 after {self.ready_timeout:.0f} s:\n{self.log()[-4000:]}")
            time.sleep(0.005)
        while len(self.worker_pids()) < self.workers:  # the figures need every worker forked
            if time.perf_counter() > deadline:
                raise StackError(f"only {len(self.worker_pids())} of {self.workers} workers up:\n{self.log()[-4000:]}")
            time.sleep(0.05)

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        status, _, body = http_request(self.port, path, timeout=timeout)
        return status, body

    def master_pid(self) -> int:
        return self.program_pid("uwsgi")

    def cpu_seconds(self) -> float:
        """CPU time used so far (user + system) by supervisord, uWSGI and Nginx, all processes.

        Unlike req/s, CPU per request hardly moves when other work shares the machine.
        """
        total = 0.0
        for pid in self.all_pids():
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: stat fields 14, 15
        return total

    def log_tail(self, limit: int = 2000) -> str:
        return self.log()[-limit:]
