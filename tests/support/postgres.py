"""A real PostgreSQL 15 + PostGIS cluster for the tests, in a temp dir, on a free 127.0.0.1 port.

`PostgresServer` runs initdb/pg_ctl as the `postgres` user when the tests run as root (both refuse
root). Password auth over TCP, so DSNs look like production ones. `stop()`/`start()` are there for
outage tests; `close()` (also registered with atexit) stops the server and removes its directory.

Fixtures (import them explicitly into a test module or conftest):

    from tests.support.postgres import postgres_server, tz_world_dsn, tz_world_full_dsn, tz_world_outage

- `postgres_server` (session): the shared cluster. Never stop it; use `tz_world_outage` for that.
- `tz_world_dsn` (session): a database with the zones in `TEST_ZONES` loaded by our own loader.
- `tz_world_full_dsn` (session, mark your test `slow`): every zone of the packaged data.
- `tz_world_outage` (function): a private cluster with a few zones, free to stop and start.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "test-superuser-password"

# The zones the lead's tests and ours rely on, plus the ocean zones next to them so that
# near-shore points get an answer. Small enough to load in a few seconds.
TEST_ZONES = (
    "Europe/London", "Europe/Paris", "Europe/Madrid", "Europe/Monaco", "Europe/Brussels",
    "Europe/Amsterdam", "Europe/Berlin", "Europe/Kaliningrad",
    "Asia/Shanghai", "Asia/Urumqi", "Asia/Tokyo",
    "America/Los_Angeles", "America/New_York", "America/Phoenix", "America/Denver",
    "Europe/Zurich", "America/Chicago",
    "Etc/GMT", "Etc/GMT-1", "Etc/GMT-9", "Etc/GMT+2", "Etc/GMT+5", "Etc/GMT+8",
)


_WATCHDOG = """
import os, shutil, subprocess, sys
sys.stdin.buffer.read()
if os.path.exists(os.path.join(sys.argv[1], "data", "postmaster.pid")):
    subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
shutil.rmtree(sys.argv[1], ignore_errors=True)
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, port: int | None = None, settings: dict[str, str] | None = None):
        self.port = port or free_port()
        self.base = Path(tempfile.mkdtemp(prefix="easy-geoip-pg-"))
        self.data_dir = self.base / "data"
        self.log_file = self.base / "server.log"
        # Throwaway data: durability settings off make loads several times faster.
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.base),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            **(settings or {}),
        }
        self._as_postgres = os.geteuid() == 0
        self.running = False
        self._watchdog = self._start_watchdog()
        self._initdb()
        atexit.register(self.close)

    def _start_watchdog(self) -> subprocess.Popen:
        """A helper that stops the server and removes its directory when this process dies, however it
        dies (a CI timeout's SIGKILL skips atexit and fixtures): its stdin closes then."""
        stop = [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"]
        if self._as_postgres:
            stop = ["runuser", "-u", "postgres", "--", *stop]
        return subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.base), *stop],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def _initdb(self) -> None:
        password_file = self.base / "pwfile"
        password_file.write_text(SUPERUSER_PASSWORD + "\n")
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            for path in (self.base, password_file):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
            "--pwfile", str(password_file), "--auth-local=trust", "--auth-host=scram-sha-256",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )

    def start(self) -> None:
        options = " ".join(f"-c {key}={value}" for key, value in self.settings.items())
        options += f" -p {self.port}"
        result = self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
            "-o", options, "-w", "-t", "60", "start", check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{self.log()}")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)
            self.running = False

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
        if self._watchdog.poll() is None:
            self._watchdog.stdin.close()  # nothing left for it to do: it exits
            self._watchdog.wait(timeout=30)

    def log(self) -> str:
        try:
            return self.log_file.read_text()[-4000:]
        except OSError:
            return ""

    # -- databases -------------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER, password: str = SUPERUSER_PASSWORD) -> str:
        return f"postgresql://{quote(user)}:{quote(password)}@127.0.0.1:{self.port}/{quote(dbname)}"

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg2

        connection = psycopg2.connect(self.dsn(dbname), connect_timeout=5)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql)
        finally:
            connection.close()

    def create_database(self, name: str, postgis: bool = True) -> str:
        self.execute(f'CREATE DATABASE "{name}"')
        if postgis:
            self.execute("CREATE EXTENSION postgis", dbname=name)
        return self.dsn(name)

    def wait_until_refusing(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.05)
        raise RuntimeError("PostgreSQL still accepts connections after stop")


def started_server(**kwargs) -> PostgresServer:
    server = PostgresServer(**kwargs)
    try:
        server.start()
    except Exception:
        server.close()
        raise
    return server


def load_zones(dsn: str, zones=TEST_ZONES):
    from app.timezones.loader import load_tz_world

    return load_tz_world(dsn, zones=list(zones) if zones else None)


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_server():
    server = started_server()
    yield server
    server.close()


@pytest.fixture(scope="session")
def tz_world_dsn(postgres_server) -> str:
    dsn = postgres_server.create_database("tz_world_test")
    load_zones(dsn)
    return dsn


@pytest.fixture(scope="session")
def tz_world_full_dsn(postgres_server) -> str:
    dsn = postgres_server.create_database("tz_world_full")
    load_zones(dsn, zones=None)
    return dsn


@contextlib.contextmanager
def private_tz_server(database: str):
    """A private server (never the shared one) with a few zones loaded in `database`
    (`server.tz_dsn`): for tests that stop, start or freeze it."""
    server = started_server()
    try:
        server.tz_dsn = server.create_database(database)
        load_zones(server.tz_dsn, zones=("Europe/London", "Europe/Paris", "Etc/GMT"))
        yield server
    finally:
        server.close()


@pytest.fixture
def tz_world_outage():
    """A private server with a few zones loaded: stop() and start() it at will."""
    with private_tz_server("tz_world_outage") as server:
        yield server
