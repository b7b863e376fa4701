"""The record path: the field tables read in C (mmdb_records) and in Python (record_fields) agree,
and the lookup service's caches of what it made of records are invisible in the answers: every
document is the same with them, without them, and without the C module; a new version of one
source empties only that source's cache.
"""
from __future__ import annotations

import copy
import ipaddress
import time

import maxminddb
import pytest

from app import record_offsets
from app.asndb import AsnDatabase
from app.citydb import CityDatabase, network_text
from app.config import Config, ConfigError
from app.document import shape_city
from app.errors import GeoIPError
from app.lookup import LookupService
from app.record_fields import ASN, CITY, Field, FieldTable
from app.record_offsets import open_native_reader
from app.services import Services
from app.targets import IPTarget
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


def _native(path, table=CITY):
    return record_offsets.mmdb_records.OffsetReader(str(path), table.spec)


def _opened(path, reader, ip_version, table=CITY):
    native, problem = open_native_reader(str(path), reader, ip_version, table)
    assert problem is None
    return native


def _locate(offsets, address):
    """(offset, prefix); the network text locate also gives is checked against citydb's own."""
    offset, prefix, network = offsets.locate(int(address), address.version)
    assert network in (None, network_text(int(address), address.version, prefix))
    assert network is not None or (address.version == 6 and "." in network_text(int(address), address.version, prefix))
    return offset, prefix


def test_mmdb_records_is_built_into_this_venv():
    """The Makefile and the Dockerfile build it; without it the service still answers, decoding
    every record (and /readyz says so: test_without_the_module_readyz_says_so)."""
    assert record_offsets.mmdb_records is not None


@pytest.mark.parametrize("ip_version", [4, 6])
def test_offsets_agree_with_the_extension_on_every_network(tmp_path, ip_version):
    records = STANDARD_RECORDS if ip_version == 6 else {
        cidr: record for cidr, record in STANDARD_RECORDS.items() if ":" not in cidr}
    path = write_city_db(tmp_path / "city.mmdb", records, ip_version=ip_version)
    with maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT) as reader:
        offsets = _opened(path, reader, ip_version)
        seen = {}
        for network, record in reader:
            for address in (network.network_address, network.broadcast_address):
                offset, prefix = _locate(offsets, address)
                assert prefix == network.prefixlen == reader.get_with_prefix_len(address)[1]
                assert offsets.read(offset) == record
                assert offsets.read_fields(offset, "de") == CITY.read_decoded(record, "de")
                assert seen.setdefault(offset, record) == record  # one record per offset
        # an address in no network: no offset, and the same prefix the extension reports
        empty = ipaddress.ip_address("44.0.0.1")
        assert _locate(offsets, empty) == (None, reader.get_with_prefix_len(empty)[1])
        offsets.close()
        with pytest.raises(ValueError):
            _locate(offsets, empty)  # closed: refused, not a read of freed memory


@pytest.mark.parametrize("ip_version", [4, 6])
def test_network_text_at_every_ipv4_prefix_length(tmp_path, ip_version):
    """The C side writes an IPv4 network's text itself (offset_reader.h): every prefix length
    from /1 to /32, octets of one, two and three digits, as ipaddress writes them."""
    networks = [ipaddress.ip_network((1 << (32 - prefix), prefix)) for prefix in range(1, 8)]  # 128.0.0.0/1 ...
    networks += [ipaddress.ip_network((0x01000000 | 1 << (32 - prefix), prefix)) for prefix in range(9, 33)]
    networks += [ipaddress.ip_network("1.0.0.0/32")]
    records = {str(network): place(f"n{network.prefixlen}", 1, ("ENG", "England")) for network in networks}
    path = write_city_db(tmp_path / "city.mmdb", records, ip_version=ip_version)
    with maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT) as reader:
        offsets = _opened(path, reader, ip_version)
        for network in networks:
            for address in (network.network_address, network.broadcast_address):
                offset, prefix, text = offsets.locate(int(address), 4)
                assert offset is not None and text == str(network), (address, text)
        offsets.close()


@pytest.mark.parametrize("name, table", [("GeoIP2-City-Test.mmdb", CITY), ("GeoLite2-City-Test.mmdb", CITY),
                                         ("GeoLite2-ASN-Test.mmdb", ASN)])
def test_c_and_python_readings_agree_on_maxmind_test_databases(maxmind_testdata, name, table):
    """Every network of MaxMind's files, in several languages: the same values, of the same types."""
    path = str(maxmind_testdata / name)
    if True:
        with maxminddb.open_database(path, maxminddb.MODE_MMAP_EXT) as reader:
            offsets = _opened(path, reader, reader.metadata().ip_version, table)
            for network, record in reader:
                offset, prefix = _locate(offsets, network.network_address)
                assert offset is not None and prefix == network.prefixlen, (name, network)
                assert offsets.read(offset) == record, (name, network)
                for lang in LANGUAGES:
                    fields = offsets.read_fields(offset, lang)
                    expected = table.read_decoded(record, lang)
                    assert fields == expected and list(map(type, fields)) == list(map(type, expected)), (name, network)
            offsets.close()


def test_fields_of_hand_made_records_match_the_python_reading(tmp_path):
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
        offsets = _native(path)
        for cidr in odd:
            address = ipaddress.ip_network(cidr).network_address
            offset, _ = _locate(offsets, address)
            record = reader.get(address)
            assert offsets.read(offset) == record
            for lang in ("en", "de", "ja", "fr"):
                fields = offsets.read_fields(offset, lang)
                expected = CITY.read_decoded(record, lang)
                assert fields == expected and list(map(type, fields)) == list(map(type, expected)), (cidr, lang)
        offsets.close()


def test_offsets_refuse_bad_arguments_without_crashing(tmp_path):
    path = write_city_db(tmp_path / "city.mmdb")
    offsets = _native(path)
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
        _native(tmp_path / "missing.mmdb")
    with pytest.raises(TypeError):  # opened without a table: locate and read only
        record_offsets.mmdb_records.OffsetReader(str(path)).read_fields(0, "en")


@pytest.mark.parametrize("spec", [
    (), ((("a",), "colour", None),), ((("a",), "list", None),), ((("a",), "text", ((("b",), "text", None),)),),
    (((), "text", None),), ((("a",), "text", None), (("a", "b"), "text", None)),
    ((("a",), "present", None), (("a",), "present", None)), ("not a field",), ((("a", 1), "text", None),),
])
def test_the_c_module_refuses_a_malformed_field_table(tmp_path, spec):
    path = write_city_db(tmp_path / "city.mmdb")
    with pytest.raises((TypeError, ValueError)):
        record_offsets.mmdb_records.OffsetReader(str(path), spec)


def test_every_kind_reads_alike_in_c_and_python(tmp_path):
    """A table of every kind over records made for it, nested paths and list items included."""
    table = FieldTable("Probe", [
        Field("text", ("a", "b", "c"), "text"), Field("whole", ("n",), "whole"), Field("real", ("r",), "real"),
        Field("flag", ("f",), "flag"), Field("name", ("a", "names"), "name"), Field("present", ("a",), "present"),
        Field("deep_present", ("a", "b"), "present"),
        Field("items", ("l",), "list", FieldTable("Item", [Field("x", ("x",), "whole"),
                                                           Field("here", ("y",), "present")], located=())),
    ])
    records = {
        "8.0.0.0/24": {"a": {"b": {"c": "deep"}, "names": {"en": "E", "de": "D"}}, "n": 2**40, "r": 1.5, "f": True,
                       "l": [{"x": 7, "y": {"z": 9}}, {"x": "no"}, 3]},  # (1 would come back True: the writer shares equal values)
        "8.0.1.0/24": {"a": "flat", "n": -3, "r": 2, "f": 0, "l": {"x": 1}},
        "8.0.2.0/24": {"a": {"b": {}}, "l": []},
    }
    path = write_city_db(tmp_path / "probe.mmdb", records, ip_version=4)
    native = _native(path, table)
    with maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT) as reader:
        for cidr in records:
            address = ipaddress.ip_network(cidr).network_address
            offset, _ = _locate(native, address)
            for lang in ("en", "de", "fr"):
                values = native.read_fields(offset, lang)
                assert values == table.read_decoded(reader.get(address), lang), (cidr, lang)
    first = native.read_fields(_locate(native, ipaddress.ip_address("8.0.0.1"))[0], "de")
    assert first == ("deep", 2**40, 1.5, True, "D", True, True, ((7, True), (None, False), (None, False)))


def test_networks_sharing_a_record_share_an_offset(tmp_path):
    path = write_city_db(tmp_path / "city.mmdb", SHARING)
    with maxminddb.open_database(str(path), maxminddb.MODE_MMAP_EXT) as reader:
        offsets = _opened(path, reader, 6)
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
        for wrong in (ShiftedReader(reader), OtherRecordReader(reader)):
            native, problem = open_native_reader(str(path), wrong, 6, CITY)
            assert native is None and "disagrees" in problem
        native, problem = open_native_reader(str(path), reader, 4, CITY)  # not the file's IP version
        assert native is None and "disagrees" in problem


def test_a_disagreement_is_reported_by_readyz_not_hidden(make_app, monkeypatch):
    monkeypatch.setattr(record_offsets, "disagreement_with_extension", lambda *args, **kwargs: "the fields of x")
    client = make_app().test_client()
    assert client.get("/api/v1/lookup/81.2.69.160").status_code == 200  # still answers, through the extension
    report = client.get("/readyz").get_json()
    assert report["status"] == "degraded"
    assert report["database"]["reader"] == {"native": False, "problem": report["database"]["reader"]["problem"]}
    assert any("disagrees" in problem and "the fields of x" in problem for problem in report["problems"])


def test_without_the_module_readyz_says_so(make_app, monkeypatch):
    monkeypatch.setattr(record_offsets, "mmdb_records", None)
    client = make_app().test_client()
    assert client.get("/api/v1/lookup/81.2.69.160").status_code == 200
    report = client.get("/readyz").get_json()
    assert report["status"] == "degraded" and report["database"]["reader"]["native"] is False
    assert any("not installed" in problem for problem in report["problems"])


def _service(city_db, asn_db=None, **kwargs) -> LookupService:
    from app.resolver import DnsResolver
    from app.timezones.embedded import EmbeddedTimezoneIndex
    return LookupService(city_db, DnsResolver(), EmbeddedTimezoneIndex(), asn_db=asn_db, **kwargs)


def test_a_record_is_shaped_once_per_language(tmp_path):
    path = write_city_db(tmp_path / "city.mmdb", SHARING)
    service = _service(_open(path))
    first = service.lookup("81.2.69.7")["results"][0]
    second = service.lookup("81.2.70.9")["results"][0]
    assert second["city"] is first["city"]  # the other network's address found the record kept
    assert (first["network"], second["network"]) == ("81.2.69.0/24", "81.2.70.0/24")  # the address's own
    german = service.lookup("81.2.69.8", "de")["results"][0]
    assert german["city"] is not first["city"]
    assert service.city_cache.info() == {"enabled": True, "entries": 2, "capacity": 5120, "hits": 1, "misses": 2}


def test_cache_is_bounded_and_answers_stay_right(tmp_path):
    path = write_city_db(tmp_path / "city.mmdb")
    city_db = _open(path)
    service = _service(city_db, record_cache_size=2)
    addresses = [address for address in _first_addresses(path) if not address.is_private]
    for _ in range(3):
        for address in addresses:
            located = city_db.locate(int(address), address.version)
            shaped = service._result(IPTarget.of(address), "en")
            assert shaped["city"] == shape_city(city_db.read(located)).city
            assert service.city_cache.info()["entries"] <= 2


def _wait_for_reload(database, reloads: int) -> None:
    deadline = time.monotonic() + 10
    while database.reloads < reloads and time.monotonic() < deadline:
        time.sleep(0.06)
        database.info  # noqa: B018 (a check happens on use)
    assert database.reloads >= reloads


def _asn_db(path, records) -> str:
    from tests.support.city_fixtures import write_asn_db
    return str(write_asn_db(path, records))


def test_each_source_invalidates_only_its_own_cache(tmp_path):
    """A City swap empties the City cache, an ASN swap the ASN cache, a new time-zone version the
    zone cache; none touches the others."""
    city_path = write_city_db(tmp_path / "city.mmdb", SHARING)
    asn_path = _asn_db(tmp_path / "asn.mmdb", {"81.2.69.0/24": (64500, "First Org")})
    city_db = _open(city_path, check_interval=0.05)
    asn_db = AsnDatabase(asn_path, check_interval=0.05, copy_dir=str(tmp_path / "copies"))
    service = _service(city_db, asn_db)
    result = service.lookup("81.2.69.7")["results"][0]
    assert result["city"]["name"] == "Leeds" and result["asn"]["organization"] == "First Org"
    paris = service.lookup("2.2.0.1")["results"][0]  # no time zone of its own: the zone cache
    assert paris["timezone"]["source"] == "tz_world"
    city_entries, zone_version = service.city_cache.entries, service.zones.version

    _asn_db(tmp_path / "asn.mmdb", {"81.2.69.0/24": (64501, "Second Org")})  # same offsets, new data
    _wait_for_reload(asn_db, 2)
    result = service.lookup("81.2.69.7")["results"][0]
    assert result["asn"] == {"number": 64501, "organization": "Second Org", "network": "81.2.69.0/24"}
    assert service.city_cache.entries is city_entries and service.city_cache.hits >= 1

    moved = dict(SHARING, **{"81.2.69.0/24": place("York", 2633352, ("ENG", "England"), lat=53.96, lon=-1.08,
                                                    radius=20, time_zone="Europe/London")})
    write_city_db(city_path, moved)  # same offsets in the new file, different data
    _wait_for_reload(city_db, 2)
    asn_entries = service.asn_cache.entries
    assert service.lookup("81.2.69.7")["results"][0]["city"]["name"] == "York"
    assert service.city_cache.entries is not city_entries and len(service.city_cache.entries) == 1
    assert service.asn_cache.entries is asn_entries and service.zones.version == zone_version

    zones_before = service.zones._zone_at
    service.timezones.version = "a reload"
    assert service.lookup("2.2.0.1")["results"][0]["timezone"]["name"] == "Europe/Paris"
    assert service.zones._zone_at is not zones_before and service.zones.info()["misses"] == 1
    assert service.city_cache.entries is not city_entries and service.asn_cache.entries is asn_entries


def test_ipv6_address_in_an_ipv4_file_and_unknown_addresses(tmp_path):
    records = {cidr: record for cidr, record in STANDARD_RECORDS.items() if ":" not in cidr}
    city_db = _open(write_city_db(tmp_path / "city.mmdb", records, ip_version=4))
    assert city_db.lookup(ipaddress.ip_address("2001:218::1")) is None
    assert city_db.locate(int(ipaddress.ip_address("44.0.0.1")), 4) is None
    hit = city_db.lookup(ipaddress.ip_address("81.2.69.7"), "de")
    assert hit.city_name == "London" and hit.network == "81.2.69.0/24" and hit.version is city_db.serving()


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
        return answers, services.lookup.city_cache.info()

    cached, info = lookup_all(4096, "a")
    assert info["enabled"] and info["hits"] > 0
    uncached, info = lookup_all(0, "b")
    assert not info["enabled"] and info["entries"] == 0
    monkeypatch.setattr(record_offsets, "mmdb_records", None)  # as if it had not been built
    fallback, info = lookup_all(4096, "c")
    assert info["entries"] == 0  # without offsets nothing names a record
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
    assert services.lookup.city_cache.info()["hits"] == 1  # the second lookup came from the kept record
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


def test_reading_at_any_offset_of_the_shared_files_fails_cleanly_or_answers(maxmind_testdata):
    """Offsets come from the tree, but the reader must hold even when they do not (a damaged
    file): every offset of MaxMind's files, broken ones included, reads or raises ValueError."""
    for path in sorted(maxmind_testdata.glob("*.mmdb")):
        try:
            offsets = _native(path, ASN if "ASN" in path.name else CITY)
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
        assert client.get("/readyz").get_json()["database"]["reader"] == {"native": True, "problem": None}
    assert answers[5120] == answers[0]
    paris = answers[0][1]["results"][0]
    assert paris["timezone"]["name"] == "Europe/Paris" and paris["timezone"]["source"] == "tz_world"
    assert answers[0][2]["results"][0]["country"] == {"iso_code": None, "name": None, "is_in_european_union": False}
