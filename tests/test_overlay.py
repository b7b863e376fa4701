"""The overlay adapter on real files: RFC 8805 parsing, validation with line numbers, most-specific
match, reload on rename with the previous overlay kept on a bad file, `cli.py check-overlay`."""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.overlay import GeofeedError, Overlay, load_files
from app.overlay.geofeed import MAX_PROBLEMS, read_geofeed

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\ufeff# Example geofeed (RFC 8805) with the coordinate extension
192.0.2.0/24,DE,DE-BE,Berlin,
192.0.2.128/25,DE,DE-BY,München,80331\r
198.51.100.0/24,US,US-CA,,
2001:db8::/32,GB,GB-ENG,London,,51.5072,-0.1276,10,Europe/London
2001:db8:1::/48,fr,fr-idf,Paris,75001,48.8566,2.3522,,
203.0.113.7/32,,,,,,,,UTC
"""


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def ip(text):
    return ipaddress.ip_address(text)


def problems_of(path, **kwargs):
    with pytest.raises(GeofeedError) as caught:
        read_geofeed(str(path), **kwargs)
    return [(problem.line, problem.message) for problem in caught.value.problems]


def test_reads_rfc8805_lines_and_the_coordinate_extension(tmp_path):
    entries = read_geofeed(str(write(tmp_path / "feed.csv", GOOD)))
    assert [entry.prefix for entry in entries] == [
        "192.0.2.0/24", "192.0.2.128/25", "198.51.100.0/24", "2001:db8::/32", "2001:db8:1::/48", "203.0.113.7/32"]
    berlin, munich, california, london, paris, utc = entries
    assert (berlin.country, berlin.country_name, berlin.region, berlin.region_name, berlin.city) == (
        "DE", "Germany", "DE-BE", "Berlin", "Berlin")
    assert berlin.fields == ("country", "region", "city") and berlin.line == 2 and berlin.file == "feed.csv"
    assert (munich.city, munich.postal, munich.region_name) == ("München", "80331", "Bayern")
    assert california.fields == ("country", "region") and california.city is None
    assert (london.latitude, london.longitude, london.accuracy_radius, london.time_zone) == (
        51.5072, -0.1276, 10, "Europe/London")
    assert london.fields == ("country", "region", "city", "location", "accuracy_radius", "time_zone")
    assert (paris.country, paris.region) == ("FR", "FR-IDF")  # codes are case-insensitive
    assert utc.fields == ("time_zone",)


def test_most_specific_prefix_wins(tmp_path):
    overlay = Overlay((str(write(tmp_path / "feed.csv", GOOD)),))
    assert overlay.lookup(ip("192.0.2.1")).city == "Berlin"
    assert overlay.lookup(ip("192.0.2.200")).city == "München"
    assert overlay.lookup(ip("::ffff:192.0.2.200")).city == "München"
    assert overlay.lookup(ip("2001:db8:1::5")).city == "Paris"
    assert overlay.lookup(ip("2001:db8:2::5")).city == "London"
    assert overlay.lookup(ip("203.0.113.7")).time_zone == "UTC"
    assert overlay.lookup(ip("203.0.113.8")) is None
    assert overlay.lookup(ip("8.8.8.8")) is None


def test_an_unconfigured_overlay_answers_nothing():
    overlay = Overlay(())
    assert not overlay.configured and overlay.lookup(ip("192.0.2.1")) is None
    assert overlay.status()["configured"] is False


@pytest.mark.parametrize("line, message", [
    ("192.0.2.0/33,DE,,,", "invalid prefix '192.0.2.0/33'"),
    ("not-a-prefix,DE,,,", "invalid prefix 'not-a-prefix'"),
    ("192.0.2.1/24,DE,,,", "host bits are set"),
    (",DE,,,", "has no prefix"),
    ("192.0.2.0/24,XX,,,", "unknown country code 'XX'"),
    ("192.0.2.0/24,DEU,,,", "unknown country code 'DEU'"),
    ("192.0.2.0/24,DE,FR-IDF,,", "region 'FR-IDF' is not in country DE"),
    ("192.0.2.0/24,DE,DE-XX,,", "region 'DE-XX' is not an ISO 3166-2 subdivision of DE"),
    ("192.0.2.0/24,,DE-BE,,", "without a country"),
    ("192.0.2.0/24", "has 1 columns"),
    ("192.0.2.0/24,DE,,,,1,2,3,UTC,extra", "has 10 columns"),
    ("192.0.2.0/24,DE,,,,91,0,,", "latitude '91' is not between -90 and 90"),
    ("192.0.2.0/24,DE,,,,nan,0,,", "latitude 'nan' is not between"),
    ("192.0.2.0/24,DE,,,,50,,,", "latitude and longitude must be given together"),
    ("192.0.2.0/24,DE,,,,,,-3,", "accuracy radius '-3'"),
    ("192.0.2.0/24,DE,,,,,,,Mars/Olympus", "time zone 'Mars/Olympus' is not an IANA time zone name"),
    ("192.0.2.0/24,,,,", "sets no field"),
    ('192.0.2.0/24,"DE,,,', "not a valid CSV line"),
])
def test_each_bad_line_is_refused_with_its_line_number(tmp_path, line, message):
    path = write(tmp_path / "feed.csv", f"# header\n192.0.2.0/25,DE,,,\n{line}\n")
    (number, text), = problems_of(path)
    assert number == 3 and message in text


def test_duplicate_prefix_in_one_file_and_across_files(tmp_path):
    path = write(tmp_path / "a.csv", "192.0.2.0/24,DE,,,\n192.0.2.0/24,FR,,,\n")
    assert problems_of(path) == [(2, "prefix 192.0.2.0/24 is already given on line 1")]
    first = write(tmp_path / "b.csv", "198.51.100.0/24,DE,,,\n")
    second = write(tmp_path / "c.csv", "# other feed\n198.51.100.0/24,FR,,,\n")
    with pytest.raises(GeofeedError) as caught:
        load_files([str(first), str(second)])
    problem, = caught.value.problems
    assert (problem.file, problem.line) == (str(second), 2) and "already given in b.csv line 1" in problem.message


def test_invalid_utf8_is_refused_with_its_line(tmp_path):
    path = write(tmp_path / "feed.csv", b"192.0.2.0/24,DE,,Berlin,\n198.51.100.0/24,DE,,K\xf6ln,\n")
    assert problems_of(path) == [(2, "is not valid UTF-8")]


def test_a_huge_file_is_refused_after_a_stat(tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:  # 100 MB, sparse: costs no disk
        handle.truncate(100 * 1024 * 1024)
    assert problems_of(path) == [(None, f"is {100 * 1024 * 1024} bytes, more than the limit of {64 * 1024 * 1024}")]


def test_garbage_stops_after_a_bounded_number_of_problems(tmp_path):
    garbage = os.urandom(1024 * 1024) + b"\n" + b"x" * (8 * 1024 * 1024)  # long lines, no line breaks
    path = write(tmp_path / "garbage.csv", garbage)
    with pytest.raises(GeofeedError) as caught:
        read_geofeed(str(path))
    assert len(caught.value.problems) <= MAX_PROBLEMS
    long_line = write(tmp_path / "long.csv", b"192.0.2.0/24,DE,,," + b"x" * 10_000 + b"\n198.51.100.0/24,US,,,\n")
    assert problems_of(long_line) == [(1, "is longer than 4096 bytes")]
    many = write(tmp_path / "many.csv", "bad\n" * 10_000)
    with pytest.raises(GeofeedError) as caught:
        read_geofeed(str(many))
    assert len(caught.value.problems) == MAX_PROBLEMS and caught.value.truncated
    assert [problem.line for problem in caught.value.problems] == list(range(1, MAX_PROBLEMS + 1))


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def replace(path: Path, text: str):
    """What an operator's deploy does: write a new file beside it, rename it over the old one."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_reload_on_rename_and_a_bad_file_keeps_the_previous_overlay(tmp_path):
    clock = Clock()
    feed = tmp_path / "feed.csv"
    write(feed, "192.0.2.0/24,DE,DE-BE,Berlin,\n")
    overlay = Overlay((str(feed),), check_interval=1.0, clock=clock, wall_clock=lambda: 1_700_000_000.0)
    assert overlay.lookup(ip("192.0.2.1")).city == "Berlin"
    status = overlay.status()
    assert status["loaded"] and status["entries"] == 1 and status["files"] == [
        {"path": str(feed), "entries": 1, "loaded_at": "2023-11-14T22:13:20+00:00", "problems": []}]

    replace(feed, "192.0.2.0/24,DE,DE-HH,Hamburg,\n198.51.100.0/24,FR,,,\n")
    assert overlay.lookup(ip("192.0.2.1")).city == "Berlin"  # not due for a check yet
    clock.now += 1.0
    assert overlay.lookup(ip("192.0.2.1")).city == "Hamburg" and overlay.reloads == 2

    replace(feed, "192.0.2.0/24,DE,DE-HH,Hamburg,\n198.51.100.0/24,ZZ,,,\n")
    clock.now += 1.0
    assert overlay.lookup(ip("192.0.2.1")).city == "Hamburg" and overlay.lookup(ip("198.51.100.1")).country == "FR"
    status = overlay.status()
    assert status["loaded"] and status["entries"] == 2
    assert status["files"][0]["problems"] == ["line 2: unknown country code 'ZZ' (ISO 3166-1 alpha-2 expected)"]
    assert status["problems"] == [f"{feed}:2: unknown country code 'ZZ' (ISO 3166-1 alpha-2 expected)"]

    os.unlink(feed)  # a vanished file is refused too
    clock.now += 1.0
    assert overlay.lookup(ip("192.0.2.1")).city == "Hamburg"
    assert "cannot be read" in overlay.status()["files"][0]["problems"][0]

    replace(feed, "192.0.2.0/24,DE,DE-BE,Berlin,\n")
    clock.now += 1.0
    assert overlay.lookup(ip("192.0.2.1")).city == "Berlin" and overlay.status()["problems"] == []


def test_a_directory_is_its_csv_files_and_a_first_bad_load_serves_nothing(tmp_path):
    clock = Clock()
    write(tmp_path / "offices.csv", "192.0.2.0/24,DE,,Berlin,\n")
    write(tmp_path / "vpn.csv", "10.8.0.0/16,NL,NL-NH,Amsterdam,\n")
    write(tmp_path / "notes.txt", "not a geofeed\n")
    write(tmp_path / ".hidden.csv", "garbage\n")
    overlay = Overlay((str(tmp_path),), check_interval=1.0, clock=clock)
    assert overlay.lookup(ip("10.8.1.1")).city == "Amsterdam"
    assert [f["path"] for f in overlay.status()["files"]] == [str(tmp_path / "offices.csv"), str(tmp_path / "vpn.csv")]
    write(tmp_path / "new.csv", "198.51.100.0/24,FR,,,\n")  # a file added to the directory
    clock.now += 1.0
    assert overlay.lookup(ip("198.51.100.1")).country == "FR"

    broken = Overlay((str(write(tmp_path / "broken.txt", "192.0.2.0/24,DE,,,\nnope\n")),), clock=clock)
    assert broken.lookup(ip("192.0.2.1")) is None
    status = broken.status()
    assert not status["loaded"] and status["files"][0]["entries"] == 0
    assert status["files"][0]["problems"] == ["line 2: has 1 columns; a geofeed line has 5 "
                                              "(prefix,country,region,city,postal), or up to 9 with the coordinate extension"]


def cli(*args):
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_cli_check_overlay(tmp_path):
    good = write(tmp_path / "good.csv", GOOD)
    result = cli("check-overlay", str(good))
    assert result.returncode == 0 and result.stdout == f"{good}: 6 entries, valid\n"
    report = json.loads(cli("check-overlay", "--json", str(tmp_path)).stdout)
    assert report == {"valid": True, "entries": 6, "files": [{"path": str(good), "entries": 6}]}

    bad = write(tmp_path / "bad.csv", "192.0.2.0/24,DE,US-CA,,\n192.0.2.0/24,DE,,,\n")
    result = cli("check-overlay", str(bad))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [f"{bad}:1: region 'US-CA' is not in country DE (ISO 3166-2 such as DE-XX expected)"]
    report = json.loads(cli("check-overlay", "--json", str(good), str(bad)).stdout)
    assert report["valid"] is False and len(report["problems"]) == 1
    assert cli("check-overlay", str(tmp_path / "empty-dir-does-not-exist")).returncode == 1


def test_a_fifo_or_a_device_is_refused_without_reading(tmp_path):
    fifo = tmp_path / "feed.csv"
    os.mkfifo(fifo)
    assert problems_of(fifo) == [(None, "is not a regular file")]
    assert problems_of("/dev/zero") == [(None, "is not a regular file")]
    overlay = Overlay((str(fifo),))
    assert overlay.lookup(ip("192.0.2.1")) is None and overlay.status()["files"][0]["problems"] == [
        "is not a regular file"]
