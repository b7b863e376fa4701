"""The container's configs (docker/supervisord.conf, uwsgi.ini, nginx.conf, site.conf) run natively on
127.0.0.1: real supervisord, real uWSGI, real Nginx, as an unprivileged user, serving real lookups.

Two stacks run for the module: `stack` with a low per-client rate limit and only 127.0.0.1 trusted
as a proxy (so 127.0.0.2..254 are untrusted clients), and `fatal_stack` whose Nginx cannot bind.
Requests that must not be rate limited come through 127.0.0.1 with a unique X-Forwarded-For, i.e.
as a trusted proxy forwarding for a client of its own (each test then has its own bucket).
"""
from __future__ import annotations

import gzip
import itertools
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.native_stack import NativeStack, StackError, http_request, uwsgi_setting

pytestmark = pytest.mark.slow

SHARED_CITY = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "maxmind" / "GeoIP2-City-Test.mmdb"
RATE_PER_SECOND = 2
BURST = 4
_client_numbers = itertools.count(1)


def fresh_client_address() -> str:
    """A public-looking address no other request of this module forwarded for (its own rate bucket)."""
    number = next(_client_numbers)
    return f"203.0.{113 + number // 250}.{number % 250 + 1}"


class Headers(dict):
    """Response headers by lower-case name (the last value wins), remembering repeated names."""

    def __init__(self, pairs):
        super().__init__((name.lower(), value) for name, value in pairs)
        self.names = [name.lower() for name, _ in pairs]

    def count(self, name: str) -> int:
        return self.names.count(name)


def request(stack, method: str, path: str, *, headers: dict | None = None, body: bytes | None = None,
            source: str = "127.0.0.1", forwarded: bool = True) -> tuple[int, dict, bytes]:
    """One HTTP request from `source`; by default as the trusted proxy forwarding for a fresh client."""
    headers = dict(headers or {})
    if forwarded and source == "127.0.0.1":
        headers.setdefault("X-Forwarded-For", fresh_client_address())
    status, header_list, body = http_request(stack.port, path, method=method, headers=headers, body=body, source=source)
    return status, Headers(header_list), body


@pytest.fixture(scope="module")
def stack():
    if not SHARED_CITY.is_file():
        pytest.skip("../shared/testdata/maxmind is absent")
    with NativeStack(SHARED_CITY, env={
        "GEOIP_RATE_LIMIT": str(RATE_PER_SECOND),
        "GEOIP_RATE_BURST": str(BURST),
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "GEOIP_CITY_DB_CHECK_INTERVAL": "0.1",
    }) as running:
        yield running


def test_serves_lookups_through_nginx_and_uwsgi(stack):
    status, headers, body = request(stack, "GET", "/api/v1/lookup/81.2.69.142")
    assert status == 200, body
    document = json.loads(body)
    assert document["results"][0]["city"]["name"] == "London"
    assert headers["content-type"].startswith("application/json")
    status, _, body = request(stack, "GET", "/readyz")
    assert status == 200 and json.loads(body)["database"]["loaded"] is True
    status, headers, body = request(stack, "GET", "/", headers={"Accept": "text/html"})
    assert status == 200 and headers["content-type"].startswith("text/html") and b"<html" in body.lower()


def test_no_process_runs_as_root(stack):
    pids = stack.all_pids()
    # supervisord, its listener, the uWSGI master and workers, the Nginx master and workers
    assert len(pids) >= 1 + 1 + 1 + stack.workers + 2
    for pid in pids:
        uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split("\n")[0].split()
        assert "0" not in uids, (pid, Path(f"/proc/{pid}/cmdline").read_bytes())


def test_city_db_is_mapped_by_each_worker_not_by_the_master(stack):
    """lazy-apps: the City map is opened after fork, so it is never shared from the uWSGI master."""
    request(stack, "GET", "/api/v1/lookup/81.2.69.142")
    master = stack.program_pid("uwsgi")
    city = str(stack.city_db_copies)  # workers map their private copy of the file
    assert city not in Path(f"/proc/{master}/maps").read_text()
    workers = stack.worker_pids()
    assert len(workers) == stack.workers
    # A worker opens the file on its first lookup; the one that served ours has it mapped.
    assert any(city in Path(f"/proc/{worker}/maps").read_text() for worker in workers)


def test_name_workers_have_threads_for_blocking_dns(stack):
    """The names pool (docker/uwsgi.ini [names]) holds domain lookups that wait on DNS: one worker
    with GEOIP_NAME_THREADS (64) request threads; the lookups pool has GEOIP_THREADS each."""
    name_threads = int(uwsgi_setting("threads", section="names"))
    assert name_threads >= 50 and stack.name_workers >= 1
    for worker in stack.name_worker_pids():
        assert len(os.listdir(f"/proc/{worker}/task")) >= name_threads
    for worker in stack.worker_pids():
        assert len(os.listdir(f"/proc/{worker}/task")) >= stack.threads
    assert uwsgi_setting("threads") == "1"  # the lookups pool's default: no thread to hand the GIL to


@pytest.mark.parametrize("stopped, answered, refused", [
    # Without the names pool, what never waits on DNS is still answered...
    ("uwsgi-names", ["/api/v1/lookup/81.2.69.142", "/api/v1/lookup/2001:218::1", "/api/v1/lookup/me",
                     "/geoip/v2.1/city/81.2.69.142", "/api/v1/lookup/81.2.69.142?hostname=0&lang=de",
                     "/api/v1/lookup/81.2.69.142?hostname=False", "/healthz", "/readyz", "/metrics"],
     # ...and what may wait on DNS goes to the names pool only.
     ["/api/v1/lookup/example.com", "/api/v1/lookup/81.2.69.142?hostname=1", "/api/v1/lookup/me?hostname=true",
      "/81.2.69.142", "/api/v1/lookup/81.2.69.142/x"]),
    # Without the lookups pool, names and batches are still answered (and IP lookups are not).
    ("uwsgi", ["/api/v1/lookup/81.2.69.142?hostname=1", "/81.2.69.142"],
     ["/api/v1/lookup/81.2.69.142", "/healthz"]),
])
def test_nginx_sends_each_request_to_its_pool(stack, stopped, answered, refused):
    stack.supervisorctl("stop", stopped)
    try:
        for path in answered:
            status, _, body = request(stack, "GET", path)
            assert status in (200, 404, 422) and b"SERVICE_UNAVAILABLE" not in body, (stopped, path, status, body)
        for path in refused:
            status, _, body = request(stack, "GET", path)
            assert status == 503 and json.loads(body)["error"]["code"] == "SERVICE_UNAVAILABLE", (stopped, path)
        if stopped == "uwsgi":
            status, _, body = request(stack, "POST", "/api/v1/lookup", body=b'{"targets": ["81.2.69.142"]}',
                                      headers={"Content-Type": "application/json"})
            assert status == 200 and json.loads(body)["results"][0]["results"][0]["city"]["name"] == "London", body
    finally:
        stack.supervisorctl("start", stopped)
        stack.wait_ready()


def test_workers_run_with_few_malloc_arenas(stack):
    """supervisord starts uWSGI with MALLOC_ARENA_MAX=2 (docker/supervisord.conf): with 64 threads,
    glibc's per-thread arenas made a worker's heap creep by about 7 MB per 100,000 lookups."""
    for process in [stack.program_pid("uwsgi"), *stack.worker_pids()]:
        environment = Path(f"/proc/{process}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_ARENA_MAX=2" in environment


def test_static_files_come_from_nginx_even_without_uwsgi(stack):
    status, headers, body = request(stack, "GET", "/static/page.css")
    assert status == 200 and body == (Path(__file__).resolve().parents[1] / "app/static/page.css").read_bytes()
    assert "expires" in headers and headers["cache-control"] == "max-age=3600"
    stack.supervisorctl("stop", "uwsgi")
    try:
        assert request(stack, "GET", "/static/page.css")[0] == 200
        status, headers, body = request(stack, "GET", "/api/v1/lookup/81.2.69.142")
        assert status == 503
        assert json.loads(body)["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert headers["retry-after"] == "5"
    finally:
        stack.supervisorctl("start", "uwsgi")
        stack.wait_ready()


@pytest.mark.parametrize("path", ["/api/v1/lookup/81.2.69.142", "/", "/static/page.css", "/nope/../../x",
                                  "/_errors/404.json"])
def test_security_headers_and_no_version_on_every_response(stack, path):
    status, headers, body = request(stack, "GET", path)
    assert headers["server"] == "nginx"  # no version
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    # one of each, never the app's and Nginx's side by side
    for name in ("content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options"):
        assert headers.count(name) == 1, (name, headers)


def test_oversized_body_gets_413_json_from_nginx(stack):
    body = json.dumps({"targets": ["81.2.69.142"] * 120_000}).encode()
    assert len(body) > 1024 * 1024
    status, headers, answer = request(stack, "POST", "/api/v1/lookup", body=body,
                                      headers={"Content-Type": "application/json"})
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(answer) == {"error": {"code": "PAYLOAD_TOO_LARGE", "message": "The request body is too large."}}


def test_very_long_uri_gets_414_json_and_no_echo(stack):
    target = "a" * 9000 + "<script>"
    status, headers, answer = request(stack, "GET", "/api/v1/lookup/" + target)
    assert status == 414
    assert json.loads(answer)["error"]["code"] == "URI_TOO_LONG"
    assert b"<script>" not in answer and b"aaaa" not in answer


def test_oversized_header_gets_400_json(stack):
    status, _, answer = request(stack, "GET", "/healthz", headers={"X-Big": "b" * 9000})
    assert status == 400
    assert json.loads(answer)["error"]["code"] == "BAD_REQUEST"


def test_uri_a_little_over_uwsgis_default_buffer_reaches_the_app(stack):
    """Nginx accepts 8 KiB request lines; uWSGI's buffer-size must too, or these become 502s."""
    status, _, answer = request(stack, "GET", "/api/v1/lookup/81.2.69.142?pad=" + "x" * 6000)
    assert status == 200, answer


def test_gzip_for_json(stack):
    status, headers, body = request(stack, "GET", "/api/v1/lookup/81.2.69.142", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("content-encoding") == "gzip"
    assert json.loads(gzip.decompress(body))["query"] == "81.2.69.142"


def test_rate_limit_answers_429_with_retry_after(stack):
    statuses = []
    for _ in range(BURST + 6):
        status, headers, body = request(stack, "GET", "/api/v1/lookup/81.2.69.142", source="127.0.0.21")
        statuses.append(status)
        if status == 429:
            assert headers["retry-after"] == "1"
            assert json.loads(body)["error"]["code"] == "RATE_LIMITED"
    assert statuses[:BURST] == [200] * BURST  # the burst is served at once
    assert statuses.count(429) >= 3, statuses
    # health checks, the page's static files and other clients are not limited
    assert request(stack, "GET", "/readyz", source="127.0.0.21")[0] == 200
    assert request(stack, "GET", "/static/page.css", source="127.0.0.21")[0] == 200
    assert request(stack, "GET", "/api/v1/lookup/81.2.69.142", source="127.0.0.22")[0] == 200
    time.sleep(1.5 * (BURST + 6) / RATE_PER_SECOND)  # the bucket drains: served again
    assert request(stack, "GET", "/api/v1/lookup/81.2.69.142", source="127.0.0.21")[0] == 200


def test_untrusted_client_cannot_dodge_the_limit_with_x_forwarded_for(stack):
    statuses = [request(stack, "GET", "/api/v1/lookup/81.2.69.142", source="127.0.0.23",
                        headers={"X-Forwarded-For": fresh_client_address()})[0] for _ in range(BURST + 6)]
    assert statuses.count(429) >= 3, statuses


def test_trusted_proxy_forwards_distinct_clients_with_their_own_limits(stack):
    statuses = [request(stack, "GET", "/api/v1/lookup/81.2.69.142", source="127.0.0.1",
                        headers={"X-Forwarded-For": fresh_client_address()})[0] for _ in range(BURST + 6)]
    assert statuses == [200] * len(statuses)


def test_me_uses_x_forwarded_for_only_from_trusted_proxies(stack):
    status, _, body = request(stack, "GET", "/api/v1/lookup/me", headers={"X-Forwarded-For": "81.2.69.142"})
    assert status == 200, body
    assert json.loads(body)["query"] == "81.2.69.142"
    # From an untrusted address the header is ignored: the answer is about the caller (loopback: reserved).
    status, _, body = request(stack, "GET", "/api/v1/lookup/me", source="127.0.0.24",
                              headers={"X-Forwarded-For": "81.2.69.142", "X-Real-IP": "81.2.69.142"})
    assert b"81.2.69.142" not in body
    assert status == 422 and json.loads(body)["error"]["code"] == "IP_ADDRESS_RESERVED"


def test_killed_worker_is_replaced_by_the_uwsgi_master(stack):
    before = stack.worker_pids()
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = stack.worker_pids()
        if len(now) == stack.workers and before[0] not in now:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"worker not replaced: {before} -> {stack.worker_pids()}")
    stack.wait_ready("/api/v1/lookup/81.2.69.142")


def test_killed_nginx_is_restarted_by_supervisord(stack):
    old = stack.program_pid("nginx")
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = stack.rpc().supervisor.getProcessInfo("nginx")
        if info["statename"] == "RUNNING" and info["pid"] not in (0, old):
            break
        time.sleep(0.2)
    else:
        pytest.fail("supervisord did not restart nginx")
    # The orphaned Nginx workers of the killed master still hold the port until they notice; the
    # new master retries the bind, so serving resumes by itself.
    stack.wait_ready()


def test_killed_uwsgi_master_is_restarted_by_supervisord(stack):
    old = stack.program_pid("uwsgi")
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = stack.rpc().supervisor.getProcessInfo("uwsgi")
        if info["statename"] == "RUNNING" and info["pid"] not in (0, old):
            break
        time.sleep(0.2)
    else:
        pytest.fail("supervisord did not restart uwsgi")
    stack.wait_ready()


def test_supervisor_control_socket_is_private_and_local(stack):
    sock = stack.run_dir / "supervisor.sock"
    mode = os.stat(sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) & 0o077 == 0
    assert stat.S_IMODE(os.stat(stack.run_dir).st_mode) == 0o700
    assert "RUNNING" in stack.supervisorctl("status", "nginx").stdout
    # supervisord listens on no TCP port
    supervisord_sockets = {os.readlink(f"/proc/{stack.process.pid}/fd/{fd}")
                           for fd in os.listdir(f"/proc/{stack.process.pid}/fd")}
    inodes = {link[len("socket:["):-1] for link in supervisord_sockets if link.startswith("socket:[")}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            assert not (fields[3] == "0A" and fields[9] in inodes), "supervisord listens on TCP"
    if os.geteuid() == 0:
        # Another unprivileged user cannot reach the socket.
        other = subprocess.run([str(Path(sys.executable).parent / "supervisorctl"), "-s",
                                f"unix://{sock}", "status"], capture_output=True, text=True, timeout=30,
                               user="daemon", group="daemon", extra_groups=[])
        assert "RUNNING" not in other.stdout
        assert "Permission denied" in other.stdout + other.stderr or other.returncode != 0


def test_bad_listen_setting_is_refused_before_nginx_starts(tmp_path):
    start = Path(__file__).resolve().parents[1] / "docker" / "start_nginx.py"
    env = {**os.environ, "GEOIP_RUN_DIR": str(tmp_path), "GEOIP_LISTEN": "8080; include /etc/passwd"}
    done = subprocess.run([sys.executable, str(start), "--test"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "GEOIP_LISTEN" in done.stderr
    env.update(GEOIP_LISTEN="127.0.0.1:8080", TRUSTED_PROXIES="10.0.0.0/8;deny all")
    done = subprocess.run([sys.executable, str(start), "--test"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "TRUSTED_PROXIES" in done.stderr


def test_program_that_cannot_stay_up_takes_supervisord_down(tmp_path):
    """The documented policy: a FATAL program stops supervisord, so Docker restarts the container."""
    if not SHARED_CITY.is_file():
        pytest.skip("../shared/testdata/maxmind is absent")
    with socket.socket() as occupied:
        occupied.bind(("127.0.0.1", 0))  # bound, not listening: Nginx's bind fails, connects are refused
        port = occupied.getsockname()[1]
        broken = NativeStack(SHARED_CITY, port=port, workers=1, ready_timeout=120)
        with pytest.raises(StackError) as failure:
            with broken:
                pass
    assert "supervisord exited" in str(failure.value)
    assert "exit_on_fatal: program nginx" in str(failure.value)
