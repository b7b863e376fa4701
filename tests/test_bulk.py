"""Bulk enrichment, `cli.py lookup --file`: real processes on real files, the local DNS server,
worker processes; streaming checked structurally (how far input is read ahead of output)."""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from app.bulk import BLOCK_BYTES, CHUNK_LINES, BulkOptions, Progress, BulkReport, run_bulk

from app.fields import parse_fields
from app.services import Services
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parent.parent

LINES = [b"81.2.69.160", b"8.8.8", b"", b"paris.test.example", b"2a02:d5c0::10", b"\xff\xfe", b"10.0.0.1",
         b"x" * 5000, b"  81.2.69.142  ", b"nope.test.example"]


def env_for(city_db, dns_server, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEOIP_", "TZ_", "DNS_"))}
    env.update({"GEOIP_CITY_DB": str(city_db), "DNS_NAMESERVERS": dns_server.nameserver, "DNS_TIMEOUT": "0.5"}, **extra)
    return env


def cli(args, env, stdin: bytes | None = None):
    return subprocess.run([sys.executable, "cli.py", "lookup", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, timeout=120)


def test_jsonl_one_line_per_input_line_in_order(tmp_path, city_db, dns_server):
    source = tmp_path / "in.txt"
    source.write_bytes(b"\n".join(LINES) + b"\n")
    done = cli(["--file", str(source)], env_for(city_db, dns_server))
    assert done.returncode == 1 and done.stderr == b""  # some lines failed; nothing extra on a pipe
    items = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(items) == len(LINES)
    assert items[0]["results"][0]["city"]["name"] == "London"
    assert [item.get("error", {}).get("code") for item in items] == [
        None, "INVALID_TARGET", "INVALID_TARGET", None, None, "INVALID_TARGET", "IP_ADDRESS_RESERVED",
        "INVALID_TARGET", None, "DOMAIN_NOT_FOUND"]
    assert items[3]["kind"] == "domain" and [r["ip"] for r in items[3]["results"]] == ["2.2.3.4", "2a02:d5c0::10"]
    assert items[5]["query"] is None and items[7]["query"] is None  # unreadable lines are not echoed
    assert items[8]["query"] == "81.2.69.142"


def test_stdin_output_file_fields_and_success_status(tmp_path, city_db, dns_server):
    out = tmp_path / "out.jsonl"
    done = cli(["--file", "-", "--output", str(out), "--fields", "city.name,country.iso_code"],
               env_for(city_db, dns_server), stdin=b"81.2.69.160\r\n2a02:d5c0::10\r\n")
    assert done.returncode == 0 and done.stdout == b""
    items = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert [item["results"] for item in items] == [
        [{"ip": "81.2.69.160", "city": {"name": "London"}, "country": {"iso_code": "GB"}}],
        [{"ip": "2a02:d5c0::10", "city": {"name": "Madrid"}, "country": {"iso_code": "ES"}}]]


def test_csv_column_in_and_csv_out(tmp_path, city_db, dns_server):
    rows_text = ('2026-01-01T00:00:00Z,81.2.69.160,/\n2026-01-01T00:00:01Z,"8.8.8",/x\nshort\n'
                 '2026-01-01T00:00:02Z,paris.test.example,/y\n')
    source = tmp_path / "access.csv"
    source.write_text("time,client,path\n" + rows_text)
    headerless = tmp_path / "headerless.csv"  # a column given by number: no header line
    headerless.write_text(rows_text)
    for path, column in ((source, "client"), (headerless, "2")):
        done = cli(["--file", str(path), "--column", column, "--format", "csv",
                    "--fields", "city.name,subdivisions.iso_code,location.latitude,canonical_name"],
                   env_for(city_db, dns_server))
        assert done.returncode == 1, done.stderr
        rows = list(csv.reader(io.StringIO(done.stdout.decode())))
        assert rows == [
            ["query", "error", "ip", "canonical_name", "city.name", "subdivisions.iso_code", "location.latitude"],
            ["81.2.69.160", "", "81.2.69.160", "", "London", "ENG", "51.5142"],
            ["8.8.8", "INVALID_TARGET", "", "", "", "", ""],
            ["", "INVALID_TARGET", "", "", "", "", ""],
            ["paris.test.example", "", "2.2.3.4", "paris.test.example", "Paris", "IDF", "48.8566"],
        ]
    missing = cli(["--file", str(source), "--column", "nope"], env_for(city_db, dns_server))
    assert missing.returncode == 2 and b"no column" in missing.stderr and b"Traceback" not in missing.stderr


def test_bad_fields_and_bad_usage_are_usage_errors(tmp_path, city_db, dns_server):
    source = tmp_path / "in.txt"
    source.write_text("81.2.69.160\n")
    bad = cli(["--file", str(source), "--fields", "city.nope<script>"], env_for(city_db, dns_server))
    assert bad.returncode == 2 and b"city.name" in bad.stderr and b"<script>" not in bad.stderr
    both = cli(["--file", str(source), "81.2.69.160"], env_for(city_db, dns_server))
    assert both.returncode == 2 and b"not both" in both.stderr
    done = cli(["--json", "--fields", "country.iso_code", "81.2.69.160"], env_for(city_db, dns_server))
    assert json.loads(done.stdout)["results"] == [{"ip": "81.2.69.160", "country": {"iso_code": "GB"}}]


def _without_local_time(output: bytes) -> list[str]:
    return [json.dumps({**item, "results": [{**r, "timezone": None} for r in item.get("results", [])]})
            for item in map(json.loads, output.splitlines())]


def test_jobs_give_the_same_output_in_the_same_order(tmp_path, city_db, dns_server):
    """Six blocks of input, written by three worker processes straight to a pipe and to a file."""
    lines = [b"81.2.69.%d" % (i % 256) for i in range(6 * BLOCK_BYTES // 11)]
    for index in range(7, len(lines), len(lines) // 9):  # lines for the batch path here and there
        lines[index:index + 2] = [b"dual.test.example", b"bad"]
    source = tmp_path / "many.txt"
    source.write_bytes(b"\n".join(lines) + b"\n")
    assert source.stat().st_size > 5 * BLOCK_BYTES
    one = cli(["--file", str(source)], env_for(city_db, dns_server))
    three = cli(["--file", str(source), "--jobs", "3"], env_for(city_db, dns_server))
    out = tmp_path / "out.jsonl"
    to_file = cli(["--file", str(source), "--jobs", "2", "--output", str(out)], env_for(city_db, dns_server))
    assert one.returncode == three.returncode == to_file.returncode == 1
    assert three.stdout.count(b"\n") == len(lines) and to_file.stdout == b""
    assert _without_local_time(one.stdout) == _without_local_time(three.stdout) == _without_local_time(out.read_bytes())


class FailingLookup:
    """The real lookup service, except that a batch holding `target` fails (a bug, say)."""

    def __init__(self, lookup, target: str):
        self._lookup, self._target = lookup, target

    def lookup_many(self, targets, *args, **kwargs):
        if self._target in targets:
            raise RuntimeError("a lookup failed")
        return self._lookup.lookup_many(targets, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._lookup, name)


def test_a_failing_block_stops_the_workers_and_what_was_written_is_whole(tmp_path, city_db):
    per_block = BLOCK_BYTES // 12
    lines = [b"81.2.69.160"] * (8 * per_block)
    lines[5 * per_block] = b"boom.test.example"
    source = tmp_path / "in.txt"
    source.write_bytes(b"\n".join(lines) + b"\n")
    config = make_config(city_db_path=str(city_db))
    out_path = tmp_path / "out.jsonl"
    with open(source, "rb") as stream, open(out_path, "wb") as out:
        with pytest.raises(RuntimeError, match="a lookup failed"):
            run_bulk(lambda: FailingLookup(Services(config).lookup, "boom.test.example"), stream, out,
                     BulkOptions(jobs=2))
    written = out_path.read_bytes()
    assert written.endswith(b"\n")
    queries = [json.loads(line)["query"] for line in written.splitlines()]
    # The blocks before the failing one, whole and in order; none after it.
    assert 0 < len(queries) <= 5 * per_block and queries == ["81.2.69.160"] * len(queries)


def test_domains_on_a_silent_server_time_out_and_the_stream_goes_on(tmp_path, city_db, dns_server):
    source = tmp_path / "slow.txt"
    source.write_text("slow.test.example\n81.2.69.160\nlondon.test.example\nslow.test.example\n")
    done = cli(["--file", str(source)], env_for(city_db, dns_server))
    codes = [json.loads(line).get("error", {}).get("code") for line in done.stdout.splitlines()]
    assert done.returncode == 1 and codes == ["DNS_TIMEOUT", None, None, "DNS_TIMEOUT"]


class CountingInput(io.RawIOBase):
    """An endless-looking input of `count` lines that records how far it has been read."""

    def __init__(self, count: int):
        self.count, self.served = count, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.served >= self.count:
            return 0
        lines = min(len(buffer) // 12, self.count - self.served)
        data = b"81.2.69.160\n" * lines
        buffer[: len(data)] = data
        self.served += lines
        return len(data)


class WatchingOutput(io.RawIOBase):
    def __init__(self, source: CountingInput):
        self.source, self.lines, self.read_ahead = source, 0, 0

    def writable(self):
        return True

    def write(self, data):
        self.lines += bytes(data).count(b"\n")
        self.read_ahead = max(self.read_ahead, self.source.served - self.lines)
        return len(data)


@pytest.mark.parametrize("jobs", [1, 2])
def test_input_is_read_only_a_few_chunks_ahead_of_output(city_db, jobs):
    source = CountingInput(40 * BLOCK_BYTES // 12)
    out = WatchingOutput(source)
    config = make_config(city_db_path=str(city_db))
    report = run_bulk(lambda: Services(config).lookup, io.BufferedReader(source, 8192), out,
                      BulkOptions(selection=parse_fields("city.name"), jobs=jobs))
    count = source.count
    assert report == BulkReport(lines=count, failed=0, addresses=count)
    assert out.lines == count
    # In flight at most: the block being read plus 3 x jobs submitted, plus the reader's buffer.
    assert out.read_ahead <= (3 * jobs + 2) * (BLOCK_BYTES // 12)


def test_progress_on_a_terminal(city_db):
    ticks = iter(range(1000))
    stream = io.StringIO()
    count = 3 * BLOCK_BYTES // 12  # three blocks of lines
    progress = Progress(stream, total_bytes=12 * count, clock=lambda: next(ticks), interval=0.5)
    source = io.BytesIO(b"81.2.69.160\n" * count)
    config = make_config(city_db_path=str(city_db))
    run_bulk(lambda: Services(config).lookup, source, io.BytesIO(), BulkOptions(), progress)
    shown = stream.getvalue().split("\r")[1:]
    assert shown[0].startswith(f"{BLOCK_BYTES // 12:,} lines, ") and "addresses/s, 33%, ETA" in shown[0]
    assert shown[-1].startswith(f"{count:,} lines, 0 failed, ") and shown[-1].endswith(" s\n")


def test_config_errors_are_usage_errors(tmp_path, city_db, dns_server):
    source = tmp_path / "in.txt"
    source.write_text("81.2.69.160\n")
    done = cli(["--file", str(source)], env_for(city_db, dns_server, DNS_TIMEOUT="x"))
    assert done.returncode == 2 and b"DNS_TIMEOUT" in done.stderr





def test_bench_figure_runs_on_a_small_file(tmp_path, city_db):
    from bench import bench_bulk
    from bench.city_files import describe
    figure = bench_bulk.measure(describe("fixture", city_db), lines=300, jobs=2, directory=tmp_path)
    assert figure["lines"] == 300 and figure["bulk_addresses_per_s"] > 0 and figure["bare_get_addresses_per_s"] > 0
    assert figure["ratio"] == round(figure["bulk_addresses_per_s"] / figure["bare_get_addresses_per_s"], 2)
    (row,) = figure["table_rows"]
    assert row[0].startswith("8. Bulk: cli.py lookup --file, 300 IPv4 lines, --jobs 2")


def test_hostname_in_bulk_and_json(tmp_path, city_db, dns_server):
    source = tmp_path / "in.txt"
    source.write_text("81.2.69.160\n81.2.69.170\n")
    done = cli(["--file", str(source), "--hostname", "--format", "csv"], env_for(city_db, dns_server))
    rows = list(csv.reader(io.StringIO(done.stdout.decode())))
    assert done.returncode == 0 and rows[0][-2:] == ["hostname.name", "hostname.verified"]
    assert rows[1][-2:] == ["london.test.example", "true"] and rows[2][-2:] == ["", "false"]
    done = cli(["--json", "--hostname", "81.2.69.160"], env_for(city_db, dns_server))
    assert json.loads(done.stdout)["results"][0]["hostname"] == {"name": "london.test.example", "verified": True,
                                                                  "error": None}


@pytest.mark.parametrize("fields", [None, "city.name,asn.number,timezone.name,network", "asn", "country,overlay"])
def test_serialised_lookups_give_the_documents_bytes(tmp_path, city_db, fields, monkeypatch):
    """The bulk JSON path (templates per City record) against orjson.dumps of the documents."""
    import orjson

    from app import document
    monkeypatch.setattr(document.time, "time", lambda: 1_780_000_000.0)  # one second: the same local times

    from app.fields import select_items
    from app.lookup_json import SerializedLookups
    from tests.support.city_fixtures import write_asn_db

    feed = tmp_path / "feed.csv"
    feed.write_text("81.2.69.144/28,GB,GB-ENG,Cambridge,\n")
    config = make_config(city_db_path=str(city_db), asn_db_path=str(write_asn_db(tmp_path / "asn.mmdb")),
                         overlay_sources=(str(feed),))
    service = Services(config).lookup
    selection = parse_fields(fields)
    targets = ([f"81.2.69.{i}" for i in range(0, 256, 7)] + [f"2.2.{i}.4" for i in range(0, 256, 9)]
               + ["8.8.8.8", "9.9.9.9", "3.0.1.1", "10.0.0.1", "8.8.8", " 81.2.69.160", "2001:218::1", "81.2.69.150"])
    serialised = SerializedLookups(service, "de", selection)
    for _ in range(2):  # templates made, then used
        lines, failed, located = serialised.many([target.encode() for target in targets])
        expected = select_items(service.lookup_many(targets, "de"), selection)
        assert lines == [orjson.dumps(item) for item in expected]
        assert failed == sum("error" in item for item in expected)
    assert serialised.templated > len(targets)  # most lines of the second pass came from templates
    assert serialised.joined_in_c >= len(targets) // 2 and not serialised.disabled  # the C join served them


def test_the_c_join_says_where_it_found_the_records_it_had_no_template_for(tmp_path, city_db):
    """Ipv4Lines.render(lines, make_missing): a line located in both files without its template
    yet is handed to make_missing with its records' offsets and networks, exactly the lookup
    service's own locate(), and joined once make_missing has made what it lacked."""
    from app.lookup_json import SerializedLookups
    from tests.support.city_fixtures import write_asn_db

    service = Services(make_config(city_db_path=str(city_db), asn_db_path=str(write_asn_db(tmp_path / "asn.mmdb")))).lookup
    serialised = SerializedLookups(service)
    serialised._check_sources()
    lines = [b"81.2.69.160", b"10.0.0.1", b"not an address", b"81.2.69.142\r", b"2.2.3.4"]
    misses = []
    assert serialised._native.render(lines, lambda *miss: misses.append(miss)) == [None] * len(lines)
    expected = []
    for index in (0, 3, 4):
        value = int.from_bytes(bytes(map(int, lines[index].rstrip(b"\r").split(b"."))), "big")
        city = service.city_db.locate(value, 4)
        asn = service.asn_db.locate(value, 4)
        expected.append((lines[index], city.record, city.network, asn and asn.record, asn and asn.network))
    assert misses == expected and any(miss[3] is not None for miss in misses)
    # What make_missing makes is used for the same line: no second pass.
    made = []

    def prepare(*miss):
        made.append(miss[0])
        serialised._prepare(*miss)
    rendered = serialised._native.render(lines, prepare)
    firsts = {}  # a line of records made already (81.2.69.142 has 81.2.69.160's) needs nothing made
    for miss in expected:
        firsts.setdefault(miss[1:2] + miss[3:4], miss[0])
    assert made == list(firsts.values()) and len(made) < len(expected)
    assert [line is not None for line in rendered] == [True, False, False, True, True]
    assert rendered[3] == serialised.many([b"81.2.69.142"])[0][0]  # its own text, without the \r
    # Once made, the same lines are joined in C without asking.
    misses = []
    assert serialised._native.render(lines, lambda *miss: misses.append(miss)) == rendered and misses == []
    # A template without its ASN record's block yet: the miss says where the ASN record is too.
    serialised._asn.clear()
    serialised._native.render(lines, lambda *miss: misses.append(miss))
    assert misses == [miss for miss in expected if miss[3] is not None]


def test_an_error_in_make_missing_is_raised_from_render(city_db):
    from app.lookup_json import SerializedLookups

    serialised = SerializedLookups(Services(make_config(city_db_path=str(city_db))).lookup)
    serialised._check_sources()

    def fails(*miss):
        raise RuntimeError("made nothing")
    with pytest.raises(RuntimeError, match="made nothing"):
        serialised._native.render([b"81.2.69.160"], fails)
    with pytest.raises(TypeError):
        serialised._native.render([b"81.2.69.160"], "not callable")
    # A make_missing that empties the list it is called for: what is gone is left to Python.
    lines = [b"81.2.69.160", b"2.2.3.4", b"81.2.69.161"]
    assert serialised._native.render(lines, lambda *miss: lines.clear()) == [None, None, None]


def test_a_template_that_disagrees_with_the_service_turns_templating_off(city_db, monkeypatch):
    """The sampled check against LookupService.lookup can fail: then every line is looked up on its own."""
    import orjson

    from app import document
    from app.lookup_json import SerializedLookups
    monkeypatch.setattr(document.time, "time", lambda: 1_780_000_000.0)  # one second: the same local times
    service = Services(make_config(city_db_path=str(city_db))).lookup
    serialised = SerializedLookups(service)
    make_layout = serialised._make_layout

    def wrong_layout(*args):  # a layout whose bytes are not the document's
        pieces, line_slots = make_layout(*args)
        return (pieces[0].replace(b'"query"', b'"Query"'),) + pieces[1:], line_slots
    monkeypatch.setattr(serialised, "_make_layout", wrong_layout)
    targets = [f"81.2.69.{i}" for i in range(140, 200, 3)]
    for _ in range(2):
        lines, failed, _located = serialised.many([target.encode() for target in targets])
        assert [json.loads(line)["query"] for line in lines] == targets and failed == 0
    assert serialised.disabled and serialised.joined_in_c == 0 and serialised.slow == 2 * len(targets)
    assert lines == [orjson.dumps(item) for item in service.lookup_many(targets)]


def test_line_blocks_keep_lines_whole_and_bounded():
    from app.bulk import split_block
    from app.textlines import line_blocks
    source = io.BytesIO(b"a\n" + b"x" * 100 + b"\nb\r\n" + b"y" * 7 + b"\nc")
    blocks = list(line_blocks(source, 16, 8))
    assert all(block.endswith(b"\n") and len(block) <= 16 + 8 + 1 for block in blocks)
    lines = [line for block in blocks for line in block.split(b"\n")[:-1]]
    assert lines[0] == b"a" and len(lines[1]) == 9 and lines[2:] == [b"b\r", b"y" * 7, b"c"]
    # split where looked up: a line over MAX_LINE_BYTES is None, nothing else changes
    from app.bulk import MAX_LINE_BYTES
    assert split_block(b"a\n" + b"x" * (MAX_LINE_BYTES + 1) + b"\nb\r\n") == [b"a", None, b"b\r"]


def test_table_with_hostnames_and_fields_only_with_json(city_db, dns_server):
    done = cli(["--hostname", "81.2.69.160", "81.2.69.161", "81.2.69.170"], env_for(city_db, dns_server))
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 0 and lines[0].rstrip().endswith("HOSTNAME")
    assert lines[1].endswith("london.test.example") and lines[2].endswith("liar.test.example (unverified)")
    assert lines[3].endswith("(PTR_NOT_FOUND)")
    table_fields = cli(["--fields", "city.name", "81.2.69.160"], env_for(city_db, dns_server))
    assert table_fields.returncode == 2 and b"--json" in table_fields.stderr and b"Traceback" not in table_fields.stderr


_FREED = """
import sys
from app.bulk import keep_freed_memory
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096
if sys.argv[1] == "keep":
    assert keep_freed_memory()
before = rss()
lines = [None] * 60_000  # the list first: nothing of the test's own then sits above the lines in the heap
for i in range(len(lines)):
    lines[i] = bytes(1000) + str(i).encode()  # a block's output lines, 60 MB
grown = rss() - before
del lines
print(grown, rss() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists() or platform.libc_ver()[0] != "glibc",
                    reason="glibc's allocator, the process's RSS read from /proc")
def test_a_bulk_process_keeps_what_it_frees_for_the_next_block():
    outcome = {}
    for mode in ("default", "keep"):
        done = subprocess.run([sys.executable, "-c", _FREED, mode], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        outcome[mode] = [int(value) for value in done.stdout.split()]
    grown, after_free = outcome["default"]
    assert grown > 50_000_000 and after_free < grown / 4  # glibc gives the freed heap back...
    grown, after_free = outcome["keep"]
    assert grown > 50_000_000 and after_free > grown * 3 / 4  # ...unless told to keep it
