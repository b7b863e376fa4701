"""`make run` (docker/run-native.sh) leaves nothing behind, however it is stopped.

The script is started for real, as `make run` starts it, with a private run directory and a free
port, then stopped each way a person or a process manager stops it: Ctrl-C (SIGINT to the
terminal's process group), SIGTERM to the process group (`timeout`, a test harness, systemd's
default), SIGTERM to the script's own process, SIGHUP (the terminal closed). Afterwards no
process of that run (supervisord, uWSGI master and workers, Nginx master and workers, the
console copier) may be left, and the port must be free for the next `make run`.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.city_fixtures import write_city_db
from tests.support.native_stack import REPO, free_port

pytestmark = pytest.mark.slow

SCRIPT = REPO / "docker" / "run-native.sh"


def processes_of(run_dir: Path, groups: frozenset[int] = frozenset()) -> dict[int, str]:
    """Every process of this run: its environment names the run directory (what the stack
    inherits), its command line does (Nginx rewrites its environment away, not its title), or it
    is in one of `groups` (the process groups seen while the stack ran: an orphaned Nginx worker
    keeps its master's group)."""
    wanted_env = f"GEOIP_RUN_DIR={run_dir}".encode()
    wanted_arg = str(run_dir).encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            ours = wanted_arg in cmdline or wanted_env in (entry / "environ").read_bytes().split(b"\0")
            if not ours and groups:
                ours = os.getpgid(int(entry.name)) in groups
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if ours:
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return conn.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _default_stop_signals() -> None:
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


class Run:
    def __init__(self, tmp_path: Path, as_user: str | None = None):
        # Straight under /tmp: when started by root the script hands the directory to `nobody`,
        # who could not reach it inside pytest's private tmp_path.
        self.run_dir = Path(tempfile.mkdtemp(prefix="geoip-make-run-"))
        self.port = free_port()
        # Inside the run directory: the script hands it to `nobody` when started by root.
        city_db = write_city_db(self.run_dir / "city.mmdb")
        env = {key: value for key, value in os.environ.items() if not key.startswith(("GEOIP_", "PYTEST"))}
        env.update(GEOIP_RUN_DIR=str(self.run_dir), GEOIP_LISTEN=f"127.0.0.1:{self.port}",
                   GEOIP_CITY_DB=str(city_db), GEOIP_WORKERS="2", GEOIP_THREADS="4")
        self.log = open(tmp_path / "run.log", "wb")
        account = {}
        if as_user is not None:  # started by an unprivileged user: no FIFO hand-over, no setpriv
            user = pwd.getpwnam(as_user)
            for path in (self.run_dir, city_db):
                os.chown(path, user.pw_uid, user.pw_gid)
            env["HOME"] = str(self.run_dir)
            account = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        # Its own session and process group, and the default action for the signals that stop it,
        # as a terminal gives `make run`. A shell cannot trap a signal it was started with ignored
        # (POSIX), and a suite started in the background (`make test &`, nohup) passes SIGINT or
        # SIGHUP on ignored: the script would then rightly not stop on them.
        self.process = subprocess.Popen([str(SCRIPT)], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_default_stop_signals, **account)
        deadline = time.monotonic() + 90
        while not answers(self.port):
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "make run did not come up:\n" + self.output()
            time.sleep(0.2)
        self.pgid = os.getpgid(self.process.pid)
        self.groups = frozenset(os.getpgid(pid) for pid in processes_of(self.run_dir)) - {os.getpgid(0)}

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def wait_gone(self, timeout: float = 60) -> dict[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = processes_of(self.run_dir, self.groups)
            if not left and self.process.poll() is not None:
                return {}
            time.sleep(0.2)
        return processes_of(self.run_dir, self.groups)

    def cleanup(self) -> None:
        for pid in processes_of(self.run_dir, getattr(self, "groups", frozenset())):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self.log.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)


STOPS = {
    "SIGINT to the group (Ctrl-C)": lambda run: os.killpg(run.pgid, signal.SIGINT),
    "SIGTERM to the group": lambda run: os.killpg(run.pgid, signal.SIGTERM),
    "SIGTERM to the script": lambda run: os.kill(run.process.pid, signal.SIGTERM),
    "SIGHUP to the group (terminal closed)": lambda run: os.killpg(run.pgid, signal.SIGHUP),
}


@pytest.mark.parametrize("stop", STOPS.values(), ids=STOPS.keys())
def test_make_run_leaves_nothing_behind(tmp_path, stop):
    run = Run(tmp_path)
    try:
        running = processes_of(run.run_dir, run.groups)
        names = " ".join(running.values())
        assert "supervisord" in names and "uwsgi" in names and "nginx: worker" in names, running
        stop(run)
        left = run.wait_gone()
        assert left == {}, f"left behind: {left}\n{run.output()}"
        assert run.process.poll() is not None
        assert port_is_free(run.port), f"port {run.port} still taken"
    finally:
        run.cleanup()


@pytest.mark.skipif(os.geteuid() != 0, reason="run as another user needs root")
def test_make_run_by_an_unprivileged_user_leaves_nothing_behind(tmp_path):
    run = Run(tmp_path, as_user="nobody")
    try:
        os.killpg(run.pgid, signal.SIGTERM)
        left = run.wait_gone()
        assert left == {}, f"left behind: {left}\n{run.output()}"
        assert port_is_free(run.port)
    finally:
        run.cleanup()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the stack to nobody")
def test_started_by_root_from_a_directory_nobody_cannot_reach_it_says_which(tmp_path):
    # A fresh clone in `mktemp -d` (mode 0700), started by root: the stack runs as nobody, who
    # cannot reach the venv. The script stops at once, naming the directory and the fix.
    hidden = Path(tempfile.mkdtemp())  # 0700, like mktemp -d
    try:
        checkout = hidden / "checkout"
        checkout.mkdir()
        shutil.copytree(REPO / "docker", checkout / "docker")
        (checkout / ".venv").symlink_to(REPO / ".venv")
        run = subprocess.run(["sh", str(checkout / "docker" / "run-native.sh")], capture_output=True, text=True,
                             timeout=60, env={**os.environ, "GEOIP_RUN_DIR": str(tmp_path / "run")})
    finally:
        shutil.rmtree(hidden)
    assert run.returncode == 1
    assert f"{hidden} is not searchable by others: chmod o+x {hidden}" in run.stderr
    assert not (tmp_path / "run" / "console").exists()  # nothing was started
