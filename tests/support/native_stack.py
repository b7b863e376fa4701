"""The container's serving stack run natively on 127.0.0.1: supervisord -> uWSGI + Nginx, started
from the repository's own docker/supervisord.conf, uwsgi.ini, nginx.conf and site.conf.

    with NativeStack(city_db="/path/to/city.mmdb", env={"GEOIP_RATE_LIMIT": "5"}) as stack:
        requests.get(stack.url + "/readyz")
        stack.worker_pids()                 # uWSGI workers, e.g. to SIGKILL one
        stack.supervisorctl("restart", "nginx")
        stack.rpc().supervisor.getProcessInfo("uwsgi")

Like the container, nothing runs as root: when the caller is root the whole stack runs as
`nobody`, in a private run directory (mode 0700) that holds the sockets, pid files, Nginx's
prefix and the City database (copied there, since the caller's files may not be readable by
that user). Replace `stack.city_db` to swap the database under the running stack.
Everything supervisord and its programs print goes to `stack.log_path` (`stack.log()`).

`wsgi_module="pkg.module:application"` serves another WSGI callable through the same configs
(the bench's ceiling, a test's instrumented app): PATH then starts with wsgi_module_bin/, whose
`uwsgi` runs the real one with the same arguments plus `--module`. `workers=None` or
`threads=None` leaves the setting to docker/uwsgi.ini's default.

`config_edits={"site.conf": edit, ...}` runs the stack from a modified copy of docker/ instead
(the bench's rows that measure one config choice; never a production setting): the run
directory gets `repo/`, the repository's top-level entries as symlinks except `docker/`, whose
files are copied (its subdirectories linked) and each named file replaced by `edit(text)`.
uwsgi.ini's `%d..`, supervisord.conf's `%(here)s/..` and start_nginx.py's own location then
find app/, cli.py, the venv and app/static through those links. An edit must raise
ConfigEditError when the text it changes is not there (`replace_once`, `remove_lines`), and the
stack refuses an edit that changes nothing or names a file docker/ does not have, so that a
config change cannot silently turn an edited stack into the default one. The edits must leave
the pools' sizes alone (`workers`/`threads` are read from the repository's uwsgi.ini).
"""
from __future__ import annotations

import http.client
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path
from typing import Callable, Mapping

REPO = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO / "docker"
SUPERVISORD_CONF = DOCKER_DIR / "supervisord.conf"
VENV_BIN = Path(sys.executable).parent
WSGI_MODULE_BIN = Path(__file__).resolve().parent / "wsgi_module_bin"
UNPRIVILEGED_USER = "nobody"


class StackError(RuntimeError):
    """The stack did not come up (the message carries the end of its log)."""


class ConfigEditError(ValueError):
    """A config edit (NativeStack's config_edits) did not find the text it edits."""


ConfigEdit = Callable[[str], str]


def replace_once(text: str, old: str, new: str) -> str:
    """`text` with its one occurrence of `old` replaced by `new`; ConfigEditError unless `old`
    occurs exactly once."""
    found = text.count(old)
    if found != 1:
        raise ConfigEditError(f"expected {old!r} exactly once, found it {found} times")
    return text.replace(old, new)


def remove_lines(text: str, pattern: str) -> str:
    """`text` without every line matching the regular expression `pattern` (matched against the
    whole line, leading/trailing spaces included); ConfigEditError if no line matches."""
    regex = re.compile(pattern)
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not regex.fullmatch(line.rstrip("\n"))]
    if len(kept) == len(lines):
        raise ConfigEditError(f"no line matches {pattern!r}")
    return "".join(kept)


def http_request(port: int, path: str, *, method: str = "GET", headers: dict | None = None,
                 body: bytes | None = None, source: str = "127.0.0.1",
                 timeout: float = 30) -> tuple[int, list[tuple[str, str]], bytes]:
    """One HTTP request to 127.0.0.1:`port` from `source` on a connection of its own:
    (status, header list as sent, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def uwsgi_setting(option: str, env: dict[str, str] | None = None, section: str = "uwsgi") -> str:
    """What uWSGI takes for `option` from docker/uwsgi.ini's pool `section` (uwsgi: the lookups
    pool, names: the names pool) in this environment ("" when unset)."""
    done = subprocess.run([str(VENV_BIN / "uwsgi"), "--ini", f"{DOCKER_DIR / 'uwsgi.ini'}:{section}", "--get", option],
                          capture_output=True, text=True, timeout=60, check=True,
                          env={"PATH": os.environ.get("PATH", ""), "GEOIP_RUN_DIR": "/nonexistent", **(env or {})})
    return done.stdout.strip()


def reachable_by_others(path: Path) -> None:
    """When root runs the stacks as `nobody`, `nobody` must be able to reach the repository (its
    venv, docker/ and app/): give search permission (x, never read) on each directory above it
    that lacks it, e.g. the 0700 directory `mktemp -d` makes for a fresh clone."""
    if os.geteuid() != 0:
        return
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & 0o001:
            os.chmod(directory, mode | 0o001)


class NativeStack:
    def __init__(self, city_db: str | Path | None, *, env: dict[str, str] | None = None, workers: int | None = 2,
                 threads: int | None = 4, port: int | None = None, ready_timeout: float = 90.0,
                 wsgi_module: str | None = None, config_edits: Mapping[str, ConfigEdit] | None = None):
        self.source_city_db = Path(city_db) if city_db else None
        self.extra_env = dict(env or {})
        self._settings = {"GEOIP_WORKERS": workers, "GEOIP_THREADS": threads}
        self.workers = workers or int(uwsgi_setting("processes"))
        self.threads = threads or int(uwsgi_setting("threads"))
        self.name_workers = int(self.extra_env.get("GEOIP_NAME_WORKERS") or uwsgi_setting("processes", section="names"))
        self.wsgi_module = wsgi_module
        self.config_edits = None if config_edits is None else dict(config_edits)
        self.docker_dir = DOCKER_DIR  # the configs the stack runs from (a copy with config_edits)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_timeout = ready_timeout
        self.run_dir: Path | None = None
        self.process: subprocess.Popen | None = None
        self._log_file = None
        self._account = pwd.getpwnam(UNPRIVILEGED_USER) if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())

    # -- life cycle ----------------------------------------------------------------------------
    def __enter__(self) -> "NativeStack":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def user(self) -> str:
        return self._account.pw_name

    @property
    def city_db(self) -> Path:
        return self.run_dir / "city.mmdb"

    @property
    def city_db_copies(self) -> Path:
        """Where the workers keep their private copy of each City DB version (what they map)."""
        return self.run_dir / "city-copies"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "stack.log"

    @property
    def supervisord_conf(self) -> Path:
        return self.docker_dir / "supervisord.conf"

    def environment(self) -> dict[str, str]:
        env = {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(self.run_dir),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "GEOIP_RUN_DIR": str(self.run_dir),
            "GEOIP_LISTEN": f"127.0.0.1:{self.port}",
            "GEOIP_CITY_DB": str(self.city_db),
            "GEOIP_CITY_DB_COPY_DIR": str(self.city_db_copies),
        }
        env.update({name: str(value) for name, value in self._settings.items() if value is not None})
        if self.wsgi_module:
            env["PATH"] = f"{WSGI_MODULE_BIN}:{env['PATH']}"
            env["NATIVE_STACK_REAL_UWSGI"] = str(VENV_BIN / "uwsgi")
            env["NATIVE_STACK_WSGI_MODULE"] = self.wsgi_module
        env.update(self.extra_env)
        return env

    def start(self) -> "NativeStack":
        reachable_by_others(REPO)
        self.run_dir = Path(tempfile.mkdtemp(prefix="geoip-native-stack-"))
        if self.config_edits is not None:
            self.docker_dir = self._edited_configs(self.run_dir / "repo")
        if self.source_city_db is not None:
            shutil.copyfile(self.source_city_db, self.city_db)
        self._log_file = open(self.log_path, "ab")
        self._hand_over(self.run_dir)
        as_other_user = self._account.pw_uid != os.geteuid()
        self.process = subprocess.Popen(
            [str(VENV_BIN / "supervisord"), "-c", str(self.supervisord_conf)],
            cwd=self.run_dir, env=self.environment(), stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
            user=self._account.pw_uid if as_other_user else None,
            group=self._account.pw_gid if as_other_user else None,
            extra_groups=[] if as_other_user else None,
        )
        self.wait_ready()
        return self

    def _edited_configs(self, root: Path) -> Path:
        """`root`: the repository as links, with a copy of docker/ that has config_edits applied;
        returns that copy."""
        root.mkdir()
        for entry in REPO.iterdir():
            if entry.name not in ("docker", ".git"):
                (root / entry.name).symlink_to(entry)
        docker_dir = root / "docker"
        docker_dir.mkdir()
        for entry in DOCKER_DIR.iterdir():
            if entry.is_file() and not entry.is_symlink():
                shutil.copy2(entry, docker_dir / entry.name)
            else:
                (docker_dir / entry.name).symlink_to(entry)
        for name, edit in self.config_edits.items():
            target = docker_dir / name
            if "/" in name or not target.is_file() or target.is_symlink():
                raise ConfigEditError(f"config_edits: docker/ has no config file {name!r}")
            before = target.read_text()
            try:
                after = edit(before)
            except ConfigEditError as exc:
                raise ConfigEditError(f"docker/{name}: {exc}") from None
            if after == before:
                raise ConfigEditError(f"docker/{name}: the edit changed nothing")
            target.write_text(after)
        return docker_dir

    def _hand_over(self, run_dir: Path) -> None:
        """The run directory and everything in it belong to the stack's user, and only to it
        (links are changed themselves, never what they point to: config_edits links the repository)."""
        os.chmod(run_dir, 0o700)
        if self._account.pw_uid != os.geteuid():
            for path in [run_dir, *run_dir.rglob("*")]:
                os.chown(path, self._account.pw_uid, self._account.pw_gid, follow_symlinks=False)

    def wait_ready(self, path: str = "/healthz") -> None:
        """Until Nginx answers 200 on `path` through uWSGI and every worker has loaded the app."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.process.poll() is not None:
                raise StackError(f"supervisord exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if self._status(path) == 200 and self.workers_loaded():
                return
            if time.monotonic() > deadline:
                raise StackError(f"not ready after {self.ready_timeout:.0f} s:\n{self.log()[-4000:]}")
            time.sleep(0.2)

    def workers_loaded(self) -> bool:
        """Every uWSGI worker of both pools has loaded the app (lazy-apps: each one after its fork,
        and reported it in the log as "WSGI app 0 ... ready ... pid: N")."""
        workers, name_workers = self.worker_pids(), self.name_worker_pids()
        if len(workers) != self.workers or len(name_workers) != self.name_workers:
            return False
        workers += name_workers
        log = self.log()
        return all(re.search(rf"WSGI app \d+ \(mountpoint='[^']*'\) ready in .* pid: {pid}\b", log) for pid in workers)

    def _status(self, path: str) -> int | None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            connection.request("GET", path)
            return connection.getresponse().status
        except OSError:
            return None
        finally:
            connection.close()

    def stop(self, timeout: float = 40.0) -> int | None:
        """Stop supervisord (which stops its programs); returns its exit status."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process is not None:
            # Anything left in supervisord's session (a program that ignored its stop signal).
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            # Programs run in process groups of their own: whatever of this stack outlived
            # supervisord (an orphaned uWSGI worker, say) is found by its run directory.
            for pid in self._leftover_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.run_dir is not None and os.environ.get("GEOIP_KEEP_STACK_DIR") != "1":
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return None if self.process is None else self.process.returncode

    def _leftover_pids(self) -> list[int]:
        if self.run_dir is None:
            return []
        marker = f"GEOIP_RUN_DIR={self.run_dir}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    if marker in handle.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
        return found

    # -- inspection and control ----------------------------------------------------------------
    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def supervisorctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Runs supervisorctl with the stack's config, as the stack's user (the socket is 0700)."""
        as_other_user = self._account.pw_uid != os.geteuid()
        return subprocess.run(
            [str(VENV_BIN / "supervisorctl"), "-c", str(self.supervisord_conf), *args],
            env=self.environment(), cwd=self.run_dir, capture_output=True, text=True, timeout=60,
            check=check,
            user=self._account.pw_uid if as_other_user else None,
            group=self._account.pw_gid if as_other_user else None,
            extra_groups=[] if as_other_user else None,
        )

    def rpc(self) -> xmlrpc.client.ServerProxy:
        """supervisord's XML-RPC interface over its unix socket (callers as root or the stack's user)."""
        from supervisor.xmlrpc import SupervisorTransport
        transport = SupervisorTransport(None, None, f"unix://{self.run_dir / 'supervisor.sock'}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport)

    def program_pid(self, name: str) -> int:
        """PID of a supervisord program ("uwsgi" is the uWSGI master, "nginx" the Nginx master)."""
        return int(self.rpc().supervisor.getProcessInfo(name)["pid"])

    def worker_pids(self) -> list[int]:
        """The lookups pool's workers: its uWSGI master's children (empty while it is not running)."""
        return self._children_of("uwsgi")

    def name_worker_pids(self) -> list[int]:
        """The names pool's workers (docker/uwsgi.ini [names])."""
        return self._children_of("uwsgi-names")

    def nginx_worker_pids(self) -> list[int]:
        return self._children_of("nginx")

    def _children_of(self, program: str) -> list[int]:
        try:
            master = self.program_pid(program)
            with open(f"/proc/{master}/task/{master}/children") as children:
                return [int(pid) for pid in children.read().split()]
        except (OSError, ValueError, xmlrpc.client.Fault):
            return []

    def all_pids(self) -> list[int]:
        """supervisord and every process below it."""
        found, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            found.append(pid)
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as children:
                    queue += [int(child) for child in children.read().split()]
            except OSError:
                pass
        return found
