"""Figure 2's rows that run our stack from an edited copy of docker/ (bench/config_edits.py,
NativeStack's config_edits): each edited stack really serves with its edit applied, and an edit
that does not find its text stops the stack before it starts (a config change must break the row,
never turn it silently into a copy of the default one).
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest

from bench import bench_http, config_edits, trivial_app
from bench.stack import ServingStack
from tests.support.city_fixtures import write_city_db
from tests.support.native_stack import (DOCKER_DIR, REPO, ConfigEditError, NativeStack, http_request, remove_lines,
                                        replace_once)

LOOKUP = "/api/v1/lookup/81.2.69.160"
NGINX_SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options",
                          "x-request-id")


def edited_rows() -> dict:
    return {label: row["config_edits"] for label, row in bench_http.CONFIG_ROWS.items() if "config_edits" in row}


def get(stack, path: str = LOOKUP, headers: dict | None = None) -> tuple[int, dict, bytes]:
    status, header_list, body = http_request(stack.port, path, headers=headers)
    return status, {name.lower(): value for name, value in header_list}, body


# -- the edits themselves, on the repository's configs and on text without their anchors ---------

def test_figure_2_has_the_edited_rows():
    assert set(edited_rows()) == {"ours_trivial_no_headers", "ours_trivial_tcp_socket", "ours_trivial_default_buffers"}


@pytest.mark.parametrize("label", sorted(edited_rows()))
def test_each_edit_applies_to_the_repository_configs(label):
    for name, edit in edited_rows()[label]().items():
        text = (DOCKER_DIR / name).read_text()
        assert edit(text) != text, f"{label}: {name} unchanged"


@pytest.mark.parametrize("label", sorted(edited_rows()))
def test_each_edit_raises_when_its_text_is_missing(label):
    for name, edit in edited_rows()[label]().items():
        with pytest.raises(ConfigEditError):
            edit("# a config file without the lines this edit changes\n")


def test_the_edit_helpers_raise_when_their_text_is_missing():
    with pytest.raises(ConfigEditError, match="exactly once"):
        replace_once("listen = 128\n", "listen = 256\n", "listen = 512\n")
    with pytest.raises(ConfigEditError, match="exactly once"):
        replace_once("a\na\n", "a\n", "b\n")
    with pytest.raises(ConfigEditError, match="no line matches"):
        remove_lines("buffer-size = 16384\n", r"post-buffering\s*=.*")
    # a comment naming the setting is not the setting
    with pytest.raises(ConfigEditError):
        remove_lines("; buffer-size = 16384 would be ours\n", r"buffer-size\s*=.*")


@pytest.mark.parametrize("edits, message", [
    ({"site.conf": lambda text: replace_once(text, "uwsgi_pass $no_such_pool;", "")}, "docker/site.conf: expected"),
    ({"no-such.conf": lambda text: text + "\n"}, "no config file 'no-such.conf'"),
    ({"uwsgi.ini": lambda text: text}, "docker/uwsgi.ini: the edit changed nothing"),
])
def test_a_stack_whose_edit_fails_never_starts(edits, message):
    stack = NativeStack(None, workers=1, threads=1, config_edits=edits)
    with pytest.raises(ConfigEditError, match=re.escape(message)):
        with stack:
            pass
    assert stack.process is None  # supervisord was never spawned


# -- the edited stacks, serving ---------------------------------------------------------------

@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    return write_city_db(tmp_path_factory.mktemp("config-edits") / "city.mmdb")


@pytest.fixture(scope="module")
def default_stack(city):
    with ServingStack(city, ceiling=True, workers=1) as stack:
        yield stack


def row_stack(label: str, city: Path, **edit_arguments) -> ServingStack:
    row = bench_http.CONFIG_ROWS[label]
    row = {**row, "config_edits": functools.partial(row["config_edits"], **edit_arguments)}
    return bench_http.config_row_stack(row, city, workers=1)


@pytest.mark.slow
def test_no_headers_stack_serves_without_nginx_security_headers(city, default_stack):
    status, headers, body = get(default_stack)
    assert status == 200 and body == trivial_app.BODY
    assert headers["x-frame-options"] == "DENY"  # the trivial app sends none: these are Nginx's
    assert all(name in headers for name in NGINX_SECURITY_HEADERS)
    with row_stack("ours_trivial_no_headers", city) as stack:
        assert stack.docker_dir != DOCKER_DIR and stack.supervisord_conf.is_relative_to(stack.run_dir)
        status, headers, body = get(stack)
        assert status == 200 and body == trivial_app.BODY
        assert not [name for name in NGINX_SECURITY_HEADERS if name in headers], headers
        # what Nginx answers itself has none either (the error pages' includes are gone too)
        status, headers, _ = get(stack, "/static/no-such-file")
        assert status == 404 and "x-frame-options" not in headers


@pytest.mark.slow
def test_tcp_socket_stack_uwsgi_listens_on_tcp(city):
    lookups_port, names_port = config_edits._free_ports(2)
    with row_stack("ours_trivial_tcp_socket", city, lookups_port=lookups_port, names_port=names_port) as stack:
        status, _, body = get(stack)
        assert status == 200 and body == trivial_app.BODY
        assert not (stack.run_dir / "uwsgi.sock").exists() and not (stack.run_dir / "uwsgi-names.sock").exists()
        assert listening_ports(stack.program_pid("uwsgi")) == {lookups_port}
        assert listening_ports(stack.program_pid("uwsgi-names")) == {names_port}
        # and the names pool answers too, through Nginx (a domain goes there: site.conf's $geoip_pool)
        status, _, body = get(stack, "/api/v1/lookup/example.com")
        assert status == 200 and body == trivial_app.BODY


@pytest.mark.slow
def test_default_buffers_stack_has_uwsgi_default_request_buffer(city, default_stack):
    # Our uwsgi.ini's 16 KB buffer-size takes a 6 KB header (Nginx allows 8 KB); uWSGI's default
    # 4 KB refuses the request, which Nginx answers with our 503 page.
    big_header = {"X-Padding": "x" * 6000}
    assert get(default_stack, headers=big_header)[0] == 200
    with row_stack("ours_trivial_default_buffers", city) as stack:
        status, _, body = get(stack)
        assert status == 200 and body == trivial_app.BODY
        status, _, body = get(stack, headers=big_header)
        assert status == 503 and b"SERVICE_UNAVAILABLE" in body
        site = (stack.docker_dir / "site.conf").read_text()
        assert "uwsgi_pass $geoip_pool;" in site and not re.search(r"^\s*uwsgi_buffers?(_size)?\s", site, re.M)


@pytest.mark.slow
def test_an_edited_stack_leaves_the_repository_alone(city):
    owners = {path: os.stat(path).st_uid for path in (REPO / "app", REPO / "app" / "static", REPO / "bench")}
    site = (DOCKER_DIR / "site.conf").read_text()
    with row_stack("ours_trivial_no_headers", city) as stack:
        assert get(stack)[0] == 200
        assert (stack.run_dir / "repo" / "app").is_symlink()
    assert {path: os.stat(path).st_uid for path in owners} == owners  # links were handed over, not their targets
    assert (DOCKER_DIR / "site.conf").read_text() == site


def listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state on 127.0.0.1 whose socket `pid` holds open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    with open(f"/proc/{pid}/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            address, port = local.split(":")
            if state == "0A" and inode in inodes and address == "0100007F":
                ports.add(int(port, 16))
    return ports
