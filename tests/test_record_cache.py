"""The City record cache: record offsets from libmaxminddb (mmdb_records), shaped records kept per offset.

The cache must be invisible in the answers: every document is the same with it, without it, and
when offsets are unavailable; a new file version starts an empty cache.
"""
from __future__ import annotations

import copy
import ipaddress
import os
import time

import maxminddb
import pytest

from app import record_offsets
from app.citydb import CityDatabase, network_text
from app.config import Config, ConfigError
from app.city_fields import CityFields, city_fields
from app.document import shape_fields
from app.errors import GeoIPError
from app.record_offsets import open_offset_reader
from app.services import Services
from tests.support.city_fixtures import STANDARD_RECORDS, place, write_city_db

LANGUAGES = ("en", "de", "ja", "pt-BR", "zh-CN", "xx")
SHARED_RECORD = place("Leeds", 2644688, ("ENG", "England"), lat=53.79, lon=-1.55, radius=20, time_zone="Europe/London")
SHARING = {  # two networks, one record (mmdb-writer stores identical data once, as MaxMind's writer does)
    "81.2.69.0/24": SHARED_RECORD,
    "81.2.70.0/24": SHARED_RECORD,
    "2.2.0.0/16": STANDARD_RECORDS["2.2.0.0/16"],
}


def _first_addresses(path) -> list:
    with maxminddb.open_database(str(path)) as reader:
        return [network.network_address for network, _ in reader]


def _open(path, **kwargs) -> CityDatabase:
    kwargs.setdefault("copy_dir", str(path.parent / "copies"))
    return CityDatabase(str(path), **kwargs)


def _locate(offsets, address):
    """(offset, prefix); the network text locate also gives is checked against citydb's own."""
    offset, prefix, network = offsets.locate(int(address), address.version)
    assert network in (None, network_text(address, prefix))
    assert network is not None or (address.version == 6 and "." in network_text(address, prefix))
    return offset, prefix


def test_mmdb_records_is_built_into_this_venv():
    """The Makefile and the Dockerfile build it; without it the service still answers, decoding
    every record, so a broken build would otherwise only show as a slower service."""
    assert record_offsets.mmdb_records is not None


@pytest.mark.parametrize("ip_version", [4, 6])
def test_offsets_agree_with_the_extension_on_every_network(tmp_path, ip_version):
    records = STANDARD_RECORDS if ip_version == 6 else {
        cidr: record for cidr, record in STANDARD_RECORDS.items() if ":" not in cidr}
    path = write_city_db(tmp_path / "city.mmdb", records, ip_version=ip_version)
    with maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT) as reader:
        offsets = open_offset_reader(str(path), reader, ip_version)
        assert offsets is not None
        seen = {}
        for network, record in reader:
            for address in (network.network_address, network.broadcast_address):
                offset, prefix = _locate(offsets, address)
                assert prefix == network.prefixlen == reader.get_with_prefix_len(address)[1]
                assert offsets.read(offset) == record
                assert offsets.read_fields(offset, "de") == city_fields(record, "de")
                assert seen.setdefault(offset, record) == record  # one record per offset
        # an address in no network: no offset, and the same prefix the extension reports
        empty = ipaddress.ip_address("44.0.0.1")
        assert _locate(offsets, empty) == (None, reader.get_with_prefix_len(empty)[1])
        offsets.close()
        with pytest.raises(ValueError):
            _locate(offsets, empty)  # closed: refused, not a read of freed memory


def test_offsets_agree_on_maxmind_test_databases(maxmind_testdata):
    for name in ("GeoIP2-City-Test.mmdb", "GeoLite2-City-Test.mmdb"):
        path = str(maxmind_testdata / name)
        with maxminddb.open_database(path, maxminddb.MODE_MMAP_EXT) as reader:
            offsets = open_offset_reader(path, reader, reader.metadata().ip_version)
            assert offsets is not None, name
            for network, record in reader:
                offset, prefix = _locate(offsets, network.network_address)
                assert offset is not None and prefix == network.prefixlen, (name, network)
                assert offsets.read(offset) == record, (name, network)
                for lang in LANGUAGES:
                    fields = offsets.read_fields(offset, lang)
                    expected = city_fields(record, lang)
                    assert fields == expected and list(map(type, fields)) == list(map(type, expected)), (name, network)
            offsets.close()


def test_fields_of_hand_made_records_match_city_fields(tmp_path):
    """Edge cases the shared files lack: no names in the language (English instead), an empty name
    (English too), no English either, an empty country (no country fields), a country without its
    EU flag (False), no city (centroid), non-map parts and values of the wrong type (absent)."""
    odd = {
        "8.0.0.0/24": {"city": {"names": {"de": "München", "en": "Munich"}, "geoname_id": 2867714},
                       "country": {"iso_code": "DE", "names": {"en": "Germany"}},
                       "subdivisions": [{"iso_code": "BY", "names": {"de": ""}}, {"names": {"en": "Upper Bavaria"}}],
                       "location": {"latitude": 48.1, "longitude": 11.6, "accuracy_radius": 5, "time_zone": "Europe/Berlin"},
                       "postal": {"code": "80331"}},
        "8.0.1.0/24": {"country": {}, "continent": {"code": "EU", "names": {"fr": "Europe"}},
                       "location": {"latitude": 47.0, "longitude": 2.0, "accuracy_radius": 500}},
        "8.0.2.0/24": {"city": {"geoname_id": 1}, "registered_country": {"iso_code": "FR", "names": {"en": "", "ja": "フランス"}},
                       "extra": {"deep": [[{"x": 1.5}], True, b"\x00"]}},
        "8.0.3.0/24": {"city": "not a map", "subdivisions": {"not": "an array"}, "location": [1, 2]},
        # values of the wrong type count as absent (a name as a number, a radius as text...)
        "8.0.4.0/24": {"city": {"names": {"en": 3, "de": "Köln"}, "geoname_id": "2886242"},
                       "country": {"iso_code": 5, "names": ["Germany"], "is_in_european_union": 1},
                       "subdivisions": [1, "x", {"iso_code": "NW", "names": {"en": "North Rhine-Westphalia"}}],
                       "location": {"latitude": "north", "longitude": 7, "accuracy_radius": "far", "time_zone": 7},
                       "postal": {"code": 50667}},
    }
    path = write_city_db(tmp_path / "odd.mmdb", odd, ip_version=4)
    with maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT) as reader:
        offsets = record_offsets.mmdb_records.OffsetReader(str(path))
        for cidr in odd:
            address = ipaddress.ip_network(cidr).network_address
            offset, _ = _locate(offsets, address)
            record = reader.get(address)
            assert offsets.read(offset) == record
            for lang in ("en", "de", "ja", "fr"):
                fields = offsets.read_fields(offset, lang)
                expected = city_fields(record, lang)
                assert fields == expected and list(map(type, fields)) == list(map(type, expected)), (cidr, lang)
        offsets.close()


def test_offsets_refuse_bad_arguments_without_crashing(tmp_path):
    path = write_city_db(tmp_path / "city.mmdb")
    offsets = record_offsets.mmdb_records.OffsetReader(str(path))
    for arguments in ((-1, 4), (2**32, 4), (2**128, 6), (1, 5), ("1.2.3.4", 4)):
        with pytest.raises((ValueError, TypeError, OverflowError)):
            offsets.locate(*arguments)
    for offset in (2**31, 2**32, -1):
        with pytest.raises((ValueError, OverflowError)):
            offsets.read(offset)
        with pytest.raises((ValueError, OverflowError)):
            offsets.read_fields(offset, "en")
    with pytest.raises(TypeError):
        offsets.read_fields(0, None)
    with pytest.raises(OSError):
        record_offsets.mmdb_records.OffsetReader(str(tmp_path / "missing.mmdb"))


def test_networks_sharing_a_record_share_an_offset(tmp_path):
    path = write_city_db(tmp_path / "city.mmdb", SHARING)
    with maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT) as reader:
        offsets = open_offset_reader(str(path), reader, 6)
        leeds_a, _ = _locate(offsets, ipaddress.ip_address("81.2.69.1"))
        leeds_b, _ = _locate(offsets, ipaddress.ip_address("81.2.70.1"))
        paris, _ = _locate(offsets, ipaddress.ip_address("2.2.0.1"))
        assert leeds_a == leeds_b != paris
        offsets.close()


def test_offsets_that_disagree_with_the_extension_are_not_used(tmp_path):
    path = write_city_db(tmp_path / "city.mmdb")

    class ShiftedReader:  # what a wrong prefix convention would look like
        def __init__(self, reader):
            self.reader = reader

        def __iter__(self):
            return iter(self.reader)

        def get_with_prefix_len(self, address):
            record, prefix = self.reader.get_with_prefix_len(address)
            return record, prefix + 1

    class OtherRecordReader(ShiftedReader):  # same tree, different data
        def get_with_prefix_len(self, address):
            record, prefix = self.reader.get_with_prefix_len(address)
            return (dict(record, extra=1) if record else record), prefix

    with maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT) as reader:
        assert open_offset_reader(str(path), ShiftedReader(reader), 6) is None
        assert open_offset_reader(str(path), OtherRecordReader(reader), 6) is None
        assert open_offset_reader(str(path), reader, 4) is None  # not the file's IP version


def test_derive_runs_once_per_record_and_language(tmp_path):
    path = write_city_db(tmp_path / "city.mmdb", SHARING)
    city_db = _open(path)
    calls = []

    def derive(fields):
        calls.append(CityFields._make(fields).city_name)  # a plain tuple in CityFields' order from C
        return shape_fields(fields)

    first, network_a, _ = city_db.derive(ipaddress.ip_address("81.2.69.7"), None, derive, "en")
    second, network_b, _ = city_db.derive(ipaddress.ip_address("81.2.70.9"), "81.2.70.9", derive, "en")
    assert calls == ["Leeds"] and second is first  # the other network's address found the record kept
    assert (network_a, network_b) == ("81.2.69.0/24", "81.2.70.0/24")  # the network is the address's own
    german, _, _ = city_db.derive(ipaddress.ip_address("81.2.69.8"), None, derive, "de")
    assert calls == ["Leeds", "Leeds"] and german is not first
    assert city_db.cache_info() == {"enabled": True, "entries": 2, "capacity": 5120, "hits": 1, "misses": 2}


def test_cache_is_bounded_and_answers_stay_right(tmp_path):
    path = write_city_db(tmp_path / "city.mmdb")
    city_db = _open(path, record_cache_size=2)
    addresses = _first_addresses(path)
    expected = {address: city_db.get(address)[0] for address in addresses}
    for _ in range(3):
        for address in addresses:
            shaped, _, _ = city_db.derive(address, None, shape_fields, "en")
            assert shaped == shape_fields(city_fields(expected[address], "en"))
            assert city_db.cache_info()["entries"] <= 2


def test_a_new_file_version_starts_an_empty_cache(tmp_path):
    path = write_city_db(tmp_path / "city.mmdb", SHARING)
    city_db = _open(path, check_interval=0.05)
    address = ipaddress.ip_address("81.2.69.7")
    before, _, _ = city_db.derive(address, None, shape_fields, "en")
    assert before.city["name"] == "Leeds"
    # same offsets in the new file, different data: a stale cache would still say Leeds
    moved = dict(SHARING, **{"81.2.69.0/24": place("York", 2633352, ("ENG", "England"), lat=53.96, lon=-1.08,
                                                    radius=20, time_zone="Europe/London")})
    write_city_db(tmp_path / "city.mmdb", moved)
    deadline = time.monotonic() + 5
    while city_db.reloads < 2 and time.monotonic() < deadline:
        time.sleep(0.06)
        city_db.info  # noqa: B018 (a check happens on use)
    after, _, _ = city_db.derive(address, None, shape_fields, "en")
    assert after.city["name"] == "York"
    assert city_db.cache_info()["entries"] == 1


def test_ipv6_address_in_an_ipv4_file_and_unknown_addresses(tmp_path):
    records = {cidr: record for cidr, record in STANDARD_RECORDS.items() if ":" not in cidr}
    city_db = _open(write_city_db(tmp_path / "city.mmdb", records, ip_version=4))
    assert city_db.derive(ipaddress.ip_address("2001:218::1"), None, shape_fields, "en")[:2] == (None, None)
    shaped, network, _ = city_db.derive(ipaddress.ip_address("44.0.0.1"), None, shape_fields, "en")
    assert shaped is None and network.endswith(("/2", "/3", "/4", "/5", "/6", "/7", "/8"))


def test_documents_are_the_same_with_without_and_without_offsets(maxmind_testdata, tmp_path, monkeypatch):
    path = str(maxmind_testdata / "GeoIP2-City-Test.mmdb")
    with maxminddb.open_database(path) as reader:
        targets = [str(network.network_address) for network, _ in reader]

    def lookup_all(size, copies):
        services = Services(Config(city_db_path=path, record_cache_size=size, city_db_copy_dir=str(tmp_path / copies)))
        answers = {}
        for lang in ("en", "de", "ja"):
            for _round in range(2):  # the second round is all cache hits
                answers[lang] = [_safe(services, target, lang) for target in targets]
        return answers, services.city_db.cache_info()

    cached, info = lookup_all(4096, "a")
    assert info["enabled"] and info["hits"] > 0
    uncached, info = lookup_all(0, "b")
    assert not info["enabled"]
    monkeypatch.setattr(record_offsets, "mmdb_records", None)  # as if it had not been built
    fallback, info = lookup_all(4096, "c")
    assert not info["enabled"]
    assert cached == uncached == fallback


def _safe(services: Services, target: str, lang: str):
    try:
        document = services.lookup.lookup(target, lang)
    except GeoIPError as error:  # reserved and unknown addresses answer the same error every way
        return error.code
    return _without_clock(document)


def test_results_share_nothing_a_caller_could_change_at_the_top(make_app):
    services = make_app().extensions["geoip"]
    first = services.lookup.lookup("81.2.69.160")
    pristine = _without_clock(copy.deepcopy(first))
    first["results"][0]["ip"] = "changed"
    first["results"][0]["city"] = None
    second = services.lookup.lookup("81.2.69.160")
    assert services.city_db.cache_info()["hits"] == 1  # the second lookup came from the kept record
    assert _without_clock(second) == pristine


def _without_clock(document: dict) -> dict:
    """The document without its local time, which moves on between two lookups."""
    for result in document["results"]:
        result["timezone"] = dict(result["timezone"], local_time=None)
    return document


def test_damaged_shared_files_answer_per_address_never_500(maxmind_testdata, make_app, tmp_path):
    """MaxMind's deliberately broken City files: the offset check must not let the damage escape
    (it once made every lookup a 500); lookups answer, or 503 for the damaged records only."""
    for name in ("GeoIP2-City-Test-Broken-Double-Format.mmdb", "GeoIP2-City-Test-Invalid-Node-Count.mmdb"):
        client = make_app(city_db_path=str(maxmind_testdata / name),
                          city_db_copy_dir=str(tmp_path / name)).test_client()
        for target in ("81.2.69.160", "2.125.160.216", "89.160.20.112", "216.160.83.56", "2001:218::1",
                       "::ffff:81.2.69.160"):
            response = client.get(f"/api/v1/lookup/{target}")
            assert response.status_code in (200, 404, 503), (name, target, response.status_code)
            if response.status_code == 503:
                assert response.get_json()["error"]["code"] == "DATABASE_UNAVAILABLE"
        assert client.get("/readyz").status_code in (200, 503)


def test_record_cache_size_from_the_environment():
    assert Config.from_env({"GEOIP_RECORD_CACHE_SIZE": "0"}).record_cache_size == 0
    assert Config.from_env({}).record_cache_size == 5120
    for bad in ("-1", "many", "1.5", "2000000"):
        with pytest.raises(ConfigError, match="GEOIP_RECORD_CACHE_SIZE"):
            Config.from_env({"GEOIP_RECORD_CACHE_SIZE": bad})


def test_readyz_reports_the_record_cache(make_app):
    client = make_app().test_client()
    client.get("/api/v1/lookup/81.2.69.160")
    client.get("/api/v1/lookup/81.2.69.161")
    cache = client.get("/readyz").get_json()["database"]["record_cache"]
    assert cache == {"enabled": True, "entries": 1, "capacity": 5120, "hits": 1, "misses": 1}


def test_cache_off_means_no_second_map_of_the_file(tmp_path):
    path = write_city_db(tmp_path / "city.mmdb")

    def maps_of_copy(record_cache_size: int) -> int:
        copies = tmp_path / f"copies-{record_cache_size}"
        city_db = _open(path, record_cache_size=record_cache_size, copy_dir=str(copies))
        city_db.derive(ipaddress.ip_address("81.2.69.7"), None, shape_fields, "en")
        with open(f"/proc/{os.getpid()}/maps") as maps:
            count = sum(1 for line in maps if str(copies) in line)
        city_db.derive(ipaddress.ip_address("81.2.69.7"), None, shape_fields, "en")  # keep it alive until here
        return count

    assert maps_of_copy(0) == 1  # the extension's map only
    assert maps_of_copy(4096) == 2  # and libmaxminddb's, for the offsets


def test_reading_at_any_offset_of_the_shared_files_fails_cleanly_or_answers(maxmind_testdata):
    """Offsets come from the tree, but the reader must hold even when they do not (a damaged
    file): every offset of MaxMind's files, broken ones included, reads or raises ValueError."""
    for path in sorted(maxmind_testdata.glob("*.mmdb")):
        try:
            offsets = record_offsets.mmdb_records.OffsetReader(str(path))
        except OSError:  # GeoIP2-City-Test-Invalid-Node-Count: libmaxminddb refuses its metadata
            continue
        answered = 0
        for offset in range(0, min(path.stat().st_size, 20_000)):
            for read in (offsets.read, lambda at: offsets.read_fields(at, "en")):
                try:
                    read(offset)
                    answered += 1
                except ValueError:
                    pass
        assert answered > 0, path.name
        offsets.close()


def test_odd_records_answer_200_with_and_without_the_cache(make_app, tmp_path):
    """Parts that are not maps and values of the wrong type once made the offset check raise while
    loading (every lookup a 500), and a radius given as text would have failed the shaping: they
    count as absent, the same way with the C reader and without it."""
    odd = {
        "8.0.0.0/24": {"location": {"latitude": "north", "longitude": 2.0, "accuracy_radius": "far"}},
        "8.0.1.0/24": {"location": {"latitude": 48.85, "longitude": 2.35, "accuracy_radius": 5, "time_zone": 7}},
        "8.0.2.0/24": {"country": {"iso_code": 5, "names": {"en": 3}}, "subdivisions": [1, "x"]},
    }
    path = write_city_db(tmp_path / "odd.mmdb", odd, ip_version=4)
    answers = {}
    for size in (5120, 0):
        client = make_app(city_db_path=str(path), record_cache_size=size,
                          city_db_copy_dir=str(tmp_path / f"copies-{size}")).test_client()
        answers[size] = []
        for address in ("8.0.0.1", "8.0.1.1", "8.0.2.1"):
            response = client.get(f"/api/v1/lookup/{address}")
            assert response.status_code == 200, (size, address, response.get_data())
            answers[size].append(_without_clock(response.get_json()))
        assert client.get("/readyz").get_json()["database"]["record_cache"]["enabled"] is (size > 0)
    assert answers[5120] == answers[0]
    paris = answers[0][1]["results"][0]
    assert paris["timezone"]["name"] == "Europe/Paris" and paris["timezone"]["source"] == "tz_world"
    assert answers[0][2]["results"][0]["country"] == {"iso_code": None, "name": None, "is_in_european_union": False}
