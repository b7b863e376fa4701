"""Figure 2's rows that change one of our config choices which is no setting (bench/README.md):
edits of a copy of docker/ for NativeStack's `config_edits` (tests/support/native_stack.py).

Each function returns a fresh mapping, config file name -> edit(text) -> text. Every edit finds
its text or raises ConfigEditError (so a changed config breaks the row instead of turning it into
a copy of the default one); none of this exists outside the bench and its tests.

- `no_headers()`: site.conf without `include security-headers.conf` (Content-Security-Policy,
  X-Content-Type-Options, Referrer-Policy, X-Frame-Options, X-Request-ID on every response) and
  without the `map $upstream_http_*` blocks that decide them. (CORS and the app's own security
  headers come from the app, app/http/headers.py, not from these configs.)
- `tcp_socket()`: both uWSGI pools on TCP loopback (127.0.0.1, a free port each) instead of our
  unix sockets: uwsgi.ini's `socket` lines and start_nginx.py's upstream servers.
- `default_buffers()`: uWSGI's and Nginx's own defaults instead of ours: no `buffer-size` (uWSGI:
  4 KB) or `post-buffering` (off) in uwsgi.ini, no `uwsgi_buffer_size` or `uwsgi_buffers` in
  site.conf (Nginx: one page, 8 x 4 KB).
"""
from __future__ import annotations

import contextlib
import re
import socket

from tests.support.native_stack import ConfigEdit, ConfigEditError, remove_lines, replace_once

__all__ = ["ConfigEditError", "no_headers", "tcp_socket", "default_buffers", "UPSTREAM_HEADER_MAP"]

# One `map $upstream_http_<name> $<variable> { ... }` block of site.conf, with its closing line.
UPSTREAM_HEADER_MAP = re.compile(r"^map \$upstream_http_\w+ \$\w+ \{\n(?:.*\n)*?\}\n", re.MULTILINE)


def _without_header_maps(text: str) -> str:
    text, found = UPSTREAM_HEADER_MAP.subn("", text)
    if not found:
        raise ConfigEditError("no `map $upstream_http_* ... { }` block")
    return text


def _site_without_headers(text: str) -> str:
    return _without_header_maps(remove_lines(text, r"\s*include security-headers\.conf;\s*"))


def no_headers() -> dict[str, ConfigEdit]:
    return {"site.conf": _site_without_headers}


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports on 127.0.0.1 (held open together while chosen)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def tcp_socket(lookups_port: int | None = None, names_port: int | None = None) -> dict[str, ConfigEdit]:
    """The ports are chosen now (free ones unless given); the edits write them into the copy."""
    if lookups_port is None or names_port is None:
        lookups_port, names_port = _free_ports(2)

    def uwsgi_ini(text: str) -> str:
        text = replace_once(text, "socket = $(GEOIP_RUN_DIR)/uwsgi.sock\n", f"socket = 127.0.0.1:{lookups_port}\n")
        return replace_once(text, "socket = $(GEOIP_RUN_DIR)/uwsgi-names.sock\n", f"socket = 127.0.0.1:{names_port}\n")

    def start_nginx(text: str) -> str:
        text = replace_once(text, """f"    server unix:{run_dir / 'uwsgi.sock'};",""",
                            f'"    server 127.0.0.1:{lookups_port};",')
        return replace_once(text, """f"    server unix:{run_dir / 'uwsgi-names.sock'};",""",
                            f'"    server 127.0.0.1:{names_port};",')

    return {"uwsgi.ini": uwsgi_ini, "start_nginx.py": start_nginx}


def _uwsgi_default_buffers(text: str) -> str:
    return remove_lines(remove_lines(text, r"buffer-size\s*=.*"), r"post-buffering\s*=.*")


def _site_default_buffers(text: str) -> str:
    return remove_lines(remove_lines(text, r"\s*uwsgi_buffer_size\s.*;\s*"), r"\s*uwsgi_buffers\s.*;\s*")


def default_buffers() -> dict[str, ConfigEdit]:
    return {"uwsgi.ini": _uwsgi_default_buffers, "site.conf": _site_default_buffers}
