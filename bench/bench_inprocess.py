"""Figure 1: one lookup in process, our full path against the raw maxminddb C reader.

Stages, each timed as a full pass over the same seeded addresses:
  raw_get      maxminddb Reader.get(text): the ceiling (with an ASN file: get on both files)
  adapter      CityDatabase.locate(address as integer, version) (and AsnDatabase.locate): where the records sit
  document     LookupService.lookup(text): target parsing, reserved check, record -> document,
               time zone (from the record, else the per-worker coordinate cache and the index)
  full         document -> JSON bytes, serialised as the HTTP layer does (`json_bytes` below)
  response     document -> werkzeug Response via json_response -> bytes (the HTTP layer's next
               step, shown for context: it belongs to the HTTP figure)
The figure is full / raw_get; the stages in between show where the difference goes.
"""
from __future__ import annotations

import time

import maxminddb
import orjson

from app.config import Config
from app.errors import GeoIPError
from app.http import responses
from app.http.responses import error_payload, json_response
from app.services import Services
from app.targets import parse_ip
from bench.addresses import DEFAULT_SEED, public_ipv4


TARGET_RATIO = 2.0


def open_services(city_path: str, asn_path: str | None = None) -> Services:
    # The embedded time-zone index: PostGIS is figure 4's subject, and a lookup that needs the
    # fallback then costs what the default single-container setup costs.
    return Services(Config(city_db_path=city_path, asn_db_path=asn_path, city_db_check_interval=0.5))


def _cache_counts(services) -> dict:
    lookup = services.lookup
    counts = {}
    for name, info in (("records", lookup.city_cache.info()), ("asn_records", lookup.asn_cache.info()),
                       ("timezones", lookup.zones.info())):
        if name != "asn_records" or services.asn_db is not None:
            counts[name] = (info["hits"], info["misses"])
    return counts


def warmed_services(city_file, addresses: list[str], asn_file=None) -> Services:
    services = open_services(str(city_file.path), str(asn_file.path) if asn_file else None)
    run = full_path(services.lookup)
    for text in addresses:
        run(text)
    return services


# The body json_response sends: app.http.responses.json_bytes when the HTTP layer exposes it;
# until then orjson.dumps, which is what json_response calls (tests/test_bench_smoke.py checks
# that the two give the same bytes, so this cannot drift unnoticed). Resolved once, here, so the
# timed loop pays for the serialiser only.
json_bytes = getattr(responses, "json_bytes", None) or orjson.dumps


def full_path(lookup, serialise=json_bytes):
    def run(text: str) -> bytes:
        try:
            return serialise(lookup.lookup(text))
        except GeoIPError as error:
            return serialise(error_payload(error))
    return run


def _response_bytes(payload) -> bytes:
    return json_response(payload).get_data()


def document_only(lookup):
    def run(text: str):
        try:
            return lookup.lookup(text)
        except GeoIPError as error:
            return error
    return run


def measure(city_file, addresses: list[str], rounds: int = 3, diagnostic_count: int = 20_000,
            warm_count: int = 20_000, asn_file=None) -> dict:
    """The figure (raw_get, full) runs on every address; the in-between stages, which only say
    where the difference goes, on the first `diagnostic_count` (it keeps `make bench` short).

    Our stages keep per-worker caches (City records by offset, time zones by coordinates), so
    each stage gets its own services in every round, warmed on `warm_count` other addresses (a
    different seed): each then sees the measured addresses once, in order, like a worker that has
    been serving other clients. Otherwise a stage would find the records an earlier stage or
    round had just looked up for the same addresses, and time a cache it had warmed itself."""
    reader = maxminddb.open_database(str(city_file.path), maxminddb.MODE_MMAP_EXT)
    raw_get = reader.get
    asn_reader = maxminddb.open_database(str(asn_file.path), maxminddb.MODE_MMAP_EXT) if asn_file else None
    if asn_reader is not None:
        def raw_get(text, city=reader.get, asn=asn_reader.get):
            return city(text), asn(text)
    for text in addresses:  # pages of the files into the page cache, for every stage alike
        raw_get(text)
    others = public_ipv4(min(warm_count, len(addresses)), seed=DEFAULT_SEED + 1)

    def adapter(services):
        city_db, asn_db = services.city_db, services.asn_db
        if asn_db is None:
            return lambda text: city_db.locate(int(address := parse_ip(text)), address.version)
        return lambda text: (city_db.locate(value := int(address := parse_ip(text)), address.version),
                             asn_db.locate(value, address.version))

    builders = {
        "adapter": adapter,
        "document": lambda services: document_only(services.lookup),
        "full": lambda services: full_path(services.lookup),
        "response": lambda services: full_path(services.lookup, _response_bytes),
    }
    opened = {name: [warmed_services(city_file, others, asn_file) for _ in range(rounds)] for name in builders}
    stages = {"raw_get": [raw_get] * rounds}
    stages.update({name: [build(services) for services in opened[name]] for name, build in builders.items()})
    full_services = opened["full"][0]
    before = _cache_counts(full_services)
    figures = interleaved_best(stages, addresses, rounds, diagnostic=("adapter", "document", "response"),
                               diagnostic_count=diagnostic_count)
    ratio = figures["full"]["best_ns"] / figures["raw_get"]["best_ns"]
    caches = {name: {"hits": hits - before[name][0], "misses": misses - before[name][1],
                     "hit_rate": round((hits - before[name][0]) / max(1, hits + misses - sum(before[name])), 3)}
              for name, (hits, misses) in _cache_counts(full_services).items()}
    reader.close()
    if asn_reader is not None:
        asn_reader.close()
    return {
        "city_file": city_file.label,
        "asn_file": asn_file.label if asn_file else None,
        "addresses": len(addresses),
        "rounds": rounds,
        "stages_ns_per_lookup": figures,
        "ratio": round(ratio, 2),
        "target": f"<= {TARGET_RATIO}x raw Reader.get()" + (" on both files" if asn_file else ""),
        "met": ratio <= TARGET_RATIO,
        "warm_up_addresses": len(others),
        "cache_hits_during_full_pass": caches,
    }


def interleaved_best(stages: dict, addresses: list[str], rounds: int, chunk: int = 2000, diagnostic=(),
                     diagnostic_count: int | None = None) -> dict:
    """ns per call for each stage, robust to other load on a shared machine.

    `stages` maps a name to one function per round. The addresses are cut into chunks; every
    round times each stage on each chunk in turn, so a burst of load from elsewhere hits all
    stages alike. Per stage and chunk the best round counts (load only ever adds time); the
    stage's figure is the sum over chunks. The median round is kept too, to show how noisy the
    machine was.
    """
    chunks = [addresses[i:i + chunk] for i in range(0, len(addresses), chunk)]
    limit = len(addresses) if diagnostic_count is None else diagnostic_count
    times = {name: [[] for _ in chunks] for name in stages}
    for round_index in range(rounds):
        for index, part in enumerate(chunks):
            for name, functions in stages.items():
                if name in diagnostic and index * chunk >= limit:
                    continue
                function = functions[round_index]
                start = time.perf_counter_ns()
                for text in part:
                    function(text)
                times[name][index].append(time.perf_counter_ns() - start)
    figures = {}
    for name, per_chunk in times.items():
        timed = [(values, len(part)) for values, part in zip(per_chunk, chunks) if values]
        count = sum(size for _, size in timed)
        best = sum(min(values) for values, _ in timed)
        median = sum(sorted(values)[len(values) // 2] for values, _ in timed)
        figures[name] = {"best_ns": round(best / count, 1), "median_ns": round(median / count, 1), "addresses": count}
    return figures


def profile(city_file, addresses: list[str], output_path, asn_file=None) -> list[dict]:
    """pyinstrument over the full path; writes the text tree and returns the heaviest frames."""
    from pyinstrument import Profiler

    services = open_services(str(city_file.path), str(asn_file.path) if asn_file else None)
    run = full_path(services.lookup)
    for text in addresses:  # warm, as in the measurement
        run(text)
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(2):
        for text in addresses:
            run(text)
    profiler.stop()
    output_path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    return heaviest_frames(profiler.last_session)


def heaviest_frames(session, limit: int = 12) -> list[dict]:
    """Self time per function (summed over the call tree), as shares of the total."""
    root = session.root_frame()
    totals: dict[str, float] = {}

    def walk(frame):
        # pyinstrument files a frame's own time under synthetic "[self]" children: count those
        # as the frame's, and only real calls as time spent elsewhere.
        real_children = [child for child in frame.children if not child.is_synthetic]
        key = f"{frame.function} ({_short_path(frame.file_path)}:{frame.line_no})"
        totals[key] = totals.get(key, 0.0) + frame.time - sum(child.time for child in real_children)
        for child in real_children:
            walk(child)

    walk(root)
    total = root.time or 1.0
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:limit]
    return [{"function": key, "self_share": round(value / total, 3)} for key, value in ranked]


def _short_path(path: str | None) -> str:
    if not path:
        return "?"
    for marker in ("/site-packages/", "/work/main/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path
