"""Start Nginx for Easy GeoIP with the repository's nginx.conf/site.conf, in the container or natively.

Nginx cannot read the environment, so this launcher writes the few lines that differ between a
container and a native run (listen address, uWSGI socket, trusted proxies, rate limit) into
$GEOIP_RUN_DIR/nginx/conf/, links the unchanged config files next to them, and execs Nginx in the
foreground for supervisord. Every value is validated here, so a bad setting stops the start with
a message naming the variable instead of producing a broken or injectable config.

    GEOIP_RUN_DIR      writable runtime directory (also holds uwsgi.sock)         required
    GEOIP_LISTEN       Nginx listen address: PORT, HOST:PORT or [V6]:PORT       default 8080
    TRUSTED_PROXIES    CIDRs allowed to set X-Forwarded-For (same as the app)   default loopback
    GEOIP_RATE_LIMIT   API requests per second per client address, 0 = off      default 20
    GEOIP_RATE_BURST   requests a client may send above the rate at once        default 100
    GEOIP_ACCESS_LOG   on: one JSON line per request on stdout; off: none        default on

`--test` renders the files and runs `nginx -t` instead of starting.
"""
from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

DOCKER_DIR = Path(__file__).resolve().parent
APP_STATIC_DIR = DOCKER_DIR.parent / "app" / "static"
LINKED_CONFIG_FILES = ("nginx.conf", "site.conf", "security-headers.conf")
DEFAULT_TRUSTED_PROXIES = "127.0.0.0/8,::1/128"
# Nginx wants `[v6]:port`, `host:port` or `port`; host names are refused on purpose (no DNS at start).
LISTEN_PATTERN = re.compile(r"^(?:(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):)?(\d{1,5})$")


class SettingError(ValueError):
    pass


def listen_address(environ) -> str:
    value = environ.get("GEOIP_LISTEN", "").strip() or "8080"
    match = LISTEN_PATTERN.match(value)
    if not match or not 0 < int(match.group(1)) < 65536:
        raise SettingError(f"GEOIP_LISTEN must be PORT, IPV4:PORT or [IPV6]:PORT, got {value!r}")
    host = value.rpartition(":")[0].strip("[]") if ":" in value else ""
    if host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise SettingError(f"GEOIP_LISTEN: {host!r} is not an IP address") from None
    return value


def trusted_proxies(environ) -> list[str]:
    value = environ.get("TRUSTED_PROXIES", "").strip() or DEFAULT_TRUSTED_PROXIES
    try:
        return [str(ipaddress.ip_network(item.strip(), strict=False)) for item in value.split(",") if item.strip()]
    except ValueError as exc:
        raise SettingError(f"TRUSTED_PROXIES: {exc}") from None


def whole_number(environ, name: str, default: int, high: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) > high:
        raise SettingError(f"{name} must be a whole number between 0 and {high}, got {value!r}")
    return int(value)


def switch(environ, name: str, default: bool) -> bool:
    value = environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("on", "true", "1", "yes"):
        return True
    if value in ("off", "false", "0", "no"):
        return False
    raise SettingError(f"{name} must be on or off, got {value!r}")


def runtime_http_conf(environ, run_dir: Path) -> str:
    lines = [
        "# Written by docker/start_nginx.py from the environment at start; do not edit.",
        # The two uWSGI pools (docker/uwsgi.ini); site.conf's $geoip_pool picks one per request.
        "upstream geoip_app {",
        f"    server unix:{run_dir / 'uwsgi.sock'};",
        "}",
        "upstream geoip_names {",
        f"    server unix:{run_dir / 'uwsgi-names.sock'};",
        "}",
    ]
    # The realip module replaces $remote_addr by the right-most untrusted X-Forwarded-For hop
    # when the connection comes from a trusted proxy; rate limits and the app then see the client.
    lines += [f"set_real_ip_from {network};" for network in trusted_proxies(environ)]
    lines += ["real_ip_header X-Forwarded-For;", "real_ip_recursive on;"]
    # A request's id: the X-Request-ID a trusted proxy sent (a plain token up to 128 characters),
    # else one Nginx makes; passed to uWSGI, returned to the client, in both logs.
    lines += ["geo $realip_remote_addr $geoip_trusted_peer {", "    default 0;",
              *[f"    {network} 1;" for network in trusted_proxies(environ)], "}",
              'map "$geoip_trusted_peer:$http_x_request_id" $geoip_request_id {',
              '    "~^1:(?<forwarded_request_id>[A-Za-z0-9][A-Za-z0-9._:-]{0,127})$" $forwarded_request_id;',
              "    default $request_id;", "}"]
    if switch(environ, "GEOIP_ACCESS_LOG", True):
        # 4 KB: a write of at most PIPE_BUF bytes reaches the pipe whole, never interleaved.
        lines.append("access_log /dev/stdout geoip_json buffer=4k flush=1s;")
    else:
        lines.append("access_log off;")
    rate = whole_number(environ, "GEOIP_RATE_LIMIT", 20, 100_000)
    burst = whole_number(environ, "GEOIP_RATE_BURST", 100, 1_000_000)
    if rate:
        lines += [
            f"limit_req_zone $geoip_limit_key zone=geoip_api:10m rate={rate}r/s;",
            f"limit_req zone=geoip_api burst={burst} nodelay;",
            "limit_req_status 429;",
            "limit_req_log_level warn;",
        ]
    return "\n".join(lines) + "\n"


def runtime_listen_conf(environ) -> str:
    return f"# Written by docker/start_nginx.py; do not edit.\nlisten {listen_address(environ)};\n"


def replace_file(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)


def replace_link(link: Path, target: Path) -> None:
    temporary = link.with_name(link.name + ".tmp")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    temporary.replace(link)


def prepare(environ) -> Path:
    """Lay out the Nginx prefix directory; returns the config file to start Nginx with."""
    run_dir_text = environ.get("GEOIP_RUN_DIR", "").strip()
    if not run_dir_text or not os.path.isabs(run_dir_text):
        raise SettingError("GEOIP_RUN_DIR must be set to an absolute, writable directory")
    run_dir = Path(run_dir_text)
    prefix = run_dir / "nginx"
    conf_dir = prefix / "conf"
    for directory in (conf_dir, prefix / "temp"):
        directory.mkdir(parents=True, exist_ok=True)
    for name in LINKED_CONFIG_FILES:
        replace_link(conf_dir / name, DOCKER_DIR / name)
    replace_link(prefix / "app-static", APP_STATIC_DIR)
    replace_file(conf_dir / "runtime-http.conf", runtime_http_conf(environ, run_dir))
    replace_file(conf_dir / "runtime-listen.conf", runtime_listen_conf(environ))
    return conf_dir / "nginx.conf"


def stop_orphaned_workers(prefix: Path, grace: float = 10.0) -> int:
    """Stop the workers of a previous Nginx master that was killed (SIGKILL, OOM).

    They keep the listening socket open and would make every new master fail to bind, until
    supervisord gave up. supervisord starts each program in its own process group, so the old
    master's pid (still in its pid file) names the group its orphaned workers are in.
    """
    try:
        old_master = int((prefix / "nginx.pid").read_text().strip())
    except (OSError, ValueError):
        return 0
    if Path(f"/proc/{old_master}").exists():
        return 0  # that master is alive: not ours to touch (or a pid reused by another process)
    orphans = [pid for pid in _processes_in_group(old_master) if _command_name(pid) == "nginx"]
    for pid in orphans:
        _signal(pid, signal.SIGQUIT)  # finish in-flight requests, then exit
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in orphans):
        time.sleep(0.1)
    for pid in orphans:
        _signal(pid, signal.SIGKILL)
    return len(orphans)


def _processes_in_group(group: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # pgrp is the 3rd field after the parenthesised command name
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and os.stat(entry).st_uid == os.getuid():
                found.append(int(entry.name))
    return found


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def nginx_binary() -> str:
    # Debian puts nginx in /usr/sbin, which is not on an unprivileged user's PATH.
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise SettingError("nginx is not installed (apt-get install nginx)")
    return found


def main(argv: list[str]) -> int:
    try:
        config_file = prepare(os.environ)
        binary = nginx_binary()
    except SettingError as exc:
        print(f"start_nginx: {exc}", file=sys.stderr)
        return 2
    prefix = str(config_file.parent.parent) + "/"
    command = [binary, "-e", "stderr", "-p", prefix, "-c", str(config_file)]
    if "--test" in argv:
        command.append("-t")
    else:
        stopped = stop_orphaned_workers(config_file.parent.parent)
        if stopped:
            print(f"start_nginx: stopped {stopped} worker(s) left by a killed Nginx master", file=sys.stderr)
        command += ["-g", "daemon off;"]
    os.execv(binary, command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
