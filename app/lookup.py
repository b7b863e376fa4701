"""The lookup service: target -> addresses -> records -> document. No Flask, no maxminddb here.

It asks each adapter its narrow question (CityDatabase, AsnDatabase: where is the address's
record, what does it hold; the time-zone index: which zone is at a point) and owns every cache of
their answers, each keyed by the version of its source, so that a City swap, an ASN swap and a
tz_world reload each invalidate only what came from them (`SourceCache`). document.py shapes.
"""
from __future__ import annotations

import concurrent.futures
import functools
import ipaddress
import logging
import threading
from collections import OrderedDict

from . import document
from .citydb import CityDatabase
from .deadline import Deadline
from .errors import (AddressNotFound, AddressReserved, DatabaseUnavailable, DnsTimeout, GeoIPError,
                     TimezoneBackendUnavailable)
from . import hostnames
from .resolver import DnsResolver
from .ttl_cache import TtlCache
from .targets import MAX_TARGET_LENGTH, DomainTarget, IPTarget, is_reserved, parse_ip, parse_target, reserved

log = logging.getLogger(__name__)

ATTRIBUTIONS = {
    "dbip": "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0",
    "maxmind": "This product includes GeoLite2/GeoIP2 data created by MaxMind (https://www.maxmind.com)",
}
ASN_ATTRIBUTIONS = {
    "dbip": "IP to ASN data by DB-IP (https://db-ip.com), CC BY 4.0",
    "maxmind": ATTRIBUTIONS["maxmind"],
}


class SourceCache:
    """What the service made of one source's records, for the version serving now: a bounded LRU
    keyed by (record, language) that a new version of the source replaces with an empty one.
    Reads and writes without a lock: an entry lost to a race is only made again."""

    __slots__ = ("capacity", "version", "entries", "hits", "misses")

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.version = None
        self.entries: OrderedDict = OrderedDict()
        self.hits = self.misses = 0  # approximate under threads

    def info(self) -> dict:
        return {"enabled": self.capacity > 0, "entries": len(self.entries), "capacity": self.capacity,
                "hits": self.hits, "misses": self.misses}

    def get(self, version, key):
        if version is not self.version:
            self.version, self.entries = version, OrderedDict()
            return None
        value = self.entries.get(key)
        if value is not None:
            self.hits += 1
            try:
                self.entries.move_to_end(key)
            except KeyError:  # evicted by another thread meanwhile; the value is still good
                pass
        return value

    def put(self, version, key, value) -> None:
        self.misses += 1
        if version is not self.version or self.capacity <= 0:
            return
        entries = self.entries
        entries[key] = value
        if len(entries) > self.capacity:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                pass


class ZoneCache:
    """The time-zone index's answers by coordinates, for the index's data version serving now
    (`timezones.version`: a tz_world reload is a new one). Answers, None included, are kept;
    failures never are (lru_cache keeps no call that raised), so an outage is asked again."""

    def __init__(self, timezones, capacity: int):
        self.timezones = timezones
        self.capacity = capacity
        self.version = object()
        self._zone_at = None

    def zone_at(self, latitude: float, longitude: float):
        version = self.timezones.version
        zone_at = self._zone_at
        if version != self.version or zone_at is None:
            zone_at = self._zone_at = functools.lru_cache(maxsize=self.capacity)(self.timezones.zone_at)
            self.version = version
        return zone_at(latitude, longitude)

    def info(self) -> dict:
        info = self._zone_at.cache_info() if self._zone_at is not None else None
        return {"entries": info.currsize if info else 0, "capacity": self.capacity,
                "hits": info.hits if info else 0, "misses": info.misses if info else 0}


class LookupService:
    def __init__(self, city_db: CityDatabase, resolver: DnsResolver, timezones, *, asn_db=None, overlay=None,
                 hostnames=None, source_label: str | None = None, record_cache_size: int = 5120,
                 asn_cache_size: int = 5120, zone_cache_size: int = 4096, hostname_cache_size: int = 10_000,
                 batch_concurrency: int = 16, batch_dns_budget: float = 4.0):
        self.city_db = city_db
        self.asn_db = asn_db
        self.overlay = overlay if overlay is not None and overlay.configured else None
        self.hostnames = hostnames
        self.hostname_cache = TtlCache(hostname_cache_size)  # Hostname per address, for its TTL
        self.resolver = resolver
        self.timezones = timezones
        self.source_label = source_label
        self.batch_concurrency = batch_concurrency
        self.batch_dns_budget = batch_dns_budget
        self.city_cache = SourceCache(record_cache_size)   # ShapedRecord per (City record, language)
        self.asn_cache = SourceCache(asn_cache_size)       # (number, organization) per ASN record
        self.zones = ZoneCache(timezones, zone_cache_size)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._database_blocks: dict = {}
        self._database_pair = None  # (City version, ASN version, both blocks): every document's
        self._pool_lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------
    def lookup(self, raw: object, lang: str = "en", arrived: float | None = None, *, hostname: bool = False) -> dict:
        """`arrived`: when the request came in (a reading of the resolver's clock; now when not
        given). A domain's DNS_TIMEOUT counts from then: one that cannot be resolved by then is
        DNS_TIMEOUT, however long the request waited before it got here. `hostname` adds each
        result's PTR name within the same budget."""
        target = parse_target(raw)
        if isinstance(target, IPTarget):
            found = self._ip_document(target, lang)
            if hostname:
                self._add_hostnames([found], self.resolver.deadline(start=arrived))
            return found
        deadline = self.resolver.deadline(start=arrived)
        found = self._domain_document(target, lang, deadline)
        if hostname:
            self._add_hostnames([found], deadline)
        return found

    def lookup_address(self, text: str, lang: str = "en", arrived: float | None = None, *,
                       hostname: bool = False) -> dict:
        """An IP-only lookup (for "me")."""
        found = self._ip_document(IPTarget.of(parse_ip(text)), lang)
        if hostname:
            self._add_hostnames([found], self.resolver.deadline(start=arrived))
        return found

    def lookup_many(self, targets: list, lang: str = "en", arrived: float | None = None, *,
                    hostname: bool = False) -> list[dict]:
        """One item per target, in order. `arrived`: when the request came in (a reading of the
        resolver's clock); the batch's DNS budget counts from then and covers all its DNS work:
        the names, then with `hostname` the PTR lookups of every result."""
        budget = self.resolver.deadline(self.batch_dns_budget, start=arrived)
        items = self._lookup_many(targets, lang, budget)
        if hostname:
            self._add_hostnames(items, budget)
        return items

    def _lookup_many(self, targets: list, lang: str, budget: Deadline) -> list[dict]:
        items: list[dict | None] = [None] * len(targets)
        domains = []
        for index, raw in enumerate(targets):
            try:
                target = parse_target(raw)
                if isinstance(target, IPTarget):
                    items[index] = self._ip_document(target, lang)
                else:
                    domains.append((index, raw, target))
            except GeoIPError as error:
                items[index] = _error_item(raw, error)
        if domains:
            pool = self._batch_pool()
            futures = {pool.submit(self._domain_document, target, lang, budget): (index, raw)
                       for index, raw, target in domains}
            # One budget for all the batch's names: a batch of names on a silent DNS server must not
            # hold a worker for (names / concurrency) x DNS_TIMEOUT. Names still waiting then get
            # DNS_TIMEOUT, and those not started yet are never asked. Each name also has at most
            # DNS_TIMEOUT from its own start.
            done, pending = concurrent.futures.wait(futures, timeout=budget.remaining())
            for future in pending:
                future.cancel()
                index, raw = futures[future]
                items[index] = _error_item(raw, DnsTimeout())
            for future in done:
                index, raw = futures[future]
                try:
                    items[index] = future.result()
                except GeoIPError as error:
                    items[index] = _error_item(raw, error)
        return items

    def maxmind_city(self, text: str) -> dict:
        """The MaxMind City web service's body for one address (document.maxmind_city)."""
        address = parse_ip(text)
        target = IPTarget.of(address)
        entry = self.overlay.lookup(address) if self.overlay is not None else None
        if reserved(target.value, target.version):
            if entry is None:
                raise AddressReserved()
            return document.maxmind_city(document.maxmind_overlay(None, entry), None, str(address), entry.prefix)
        found = self.city_db.record(address)
        owner, asn_network = self._owner(target)
        if found is None and owner is None and entry is None:
            raise AddressNotFound()
        record, network = found if found is not None else (None, asn_network or (entry.prefix if entry else None))
        if entry is not None:
            record = document.maxmind_overlay(record, entry)
        return document.maxmind_city(record, owner, str(address), network)

    # -- steps ----------------------------------------------------------------------------
    def _ip_document(self, target: IPTarget, lang: str) -> dict:
        text = target.text
        if reserved(target.value, target.version):
            # Your own networks, described in the overlay, are answered; nothing else reserved is.
            entry = self.overlay.lookup(target.address) if self.overlay is not None else None
            if entry is None:
                raise AddressReserved()
            result = self._overlay_result(document.NO_CITY, entry, lang, text, entry.prefix, None)
        else:
            result = self._result(target, lang)
            if result is None:
                raise AddressNotFound()
        return self.ip_document(text, result)

    def ip_document(self, text: str, result: dict) -> dict:
        """An IP lookup's document around its one result (bulk output makes its templates with it)."""
        return document.document(text, "ip", None, [result], 0, *self._databases())

    def _domain_document(self, target: DomainTarget, lang: str, deadline: Deadline | None = None) -> dict:
        resolution = self.resolver.resolve_addresses(target.name, deadline)
        public = []
        for text in resolution.addresses:
            address = ipaddress.ip_address(text)
            if not is_reserved(address):
                public.append(address)
        withheld = len(resolution.addresses) - len(public)
        if not public:
            # Never reveal which internal addresses a name points to.
            raise AddressReserved("The domain name resolves only to reserved (internal or special-purpose) addresses.")
        results = []
        for address in public:
            result = self._result(IPTarget.of(address), lang)
            if result is None:
                result = {"ip": str(address), "error": AddressNotFound().to_dict()}
            results.append(result)
        return document.document(target.display, "domain", resolution.canonical_name, results, withheld,
                                 *self._databases(), dns_ttl=resolution.ttl)

    def _result(self, target: IPTarget, lang: str) -> dict | None:
        """One address's result, or None when no database knows it."""
        text = target.text
        located = self.city_db.locate(target.value, target.version, text)
        owner, asn_network = self._owner(target) if self.asn_db is not None else (None, None)
        entry = self.overlay.lookup(target.address) if self.overlay is not None else None
        if located is None:
            asn = document.asn_block(owner, asn_network) if owner is not None else None
            if entry is not None:
                return self._overlay_result(document.NO_CITY, entry, lang, text,
                                            asn_network or entry.prefix, asn)
            if owner is None:
                return None
            return document.result(document.NO_CITY, text, asn_network,
                                   document.timezone_block(None, None), asn)
        shaped = self.shaped_record(located, lang)
        network = located.network
        asn = document.asn_block(owner, asn_network) if owner is not None else None
        if entry is not None:
            return self._overlay_result(shaped, entry, lang, text, network, asn)
        return document.result(shaped, text, network, self.timezone_of(shaped), asn)

    def shaped_record(self, located, lang: str, keep: bool = True) -> document.ShapedRecord:
        """What a located City record makes in one language, kept per record of its version
        (unless `keep` is false: a caller that keeps its own, bulk output's templates)."""
        record = located.record
        if not keep or record is None:
            return document.shape_city(self.city_db.read(located, lang))
        key = (record, lang)
        shaped = self.city_cache.get(located.version, key)
        if shaped is None:
            shaped = document.shape_city(self.city_db.read(located, lang))
            self.city_cache.put(located.version, key, shaped)
        return shaped

    def _overlay_result(self, shaped, entry, lang: str, ip: str, network: str | None, asn) -> dict:
        """A result an overlay entry touched: the databases' record with what the entry sets
        (document.overlay_shaped), and a time zone of the entry's own when it names one."""
        shaped = document.overlay_shaped(shaped, entry, lang)
        if entry.time_zone is not None:
            timezone = document.timezone_block(entry.time_zone, "overlay", confidence=shaped.confidence)
        else:
            timezone = self.timezone_of(shaped)
        return document.result(shaped, ip, network, timezone, asn, document.overlay_block(entry))

    # -- hostnames ------------------------------------------------------------------------
    def _add_hostnames(self, items: list[dict], deadline: Deadline) -> None:
        """Give every located result of these documents its `hostname` (PTR, forward-confirmed),
        asked concurrently within `deadline`; what is still unanswered then is DNS_TIMEOUT. The
        lookup itself never fails for it."""
        results = [result for item in items if "results" in item for result in item["results"] if "error" not in result]
        if not results or self.hostnames is None:
            return
        wanted: dict[str, object] = {}
        for result in results:
            wanted.setdefault(result["ip"], None)
        pending = {}
        for text in wanted:
            address = ipaddress.ip_address(text)
            if is_reserved(address):  # an overlay-answered internal address: its name stays internal
                wanted[text] = hostname_block(None, hostnames.WITHHELD)
                continue
            cached = self.hostname_cache.get(address)
            if cached is not None:
                wanted[text] = cached
            else:
                pending[self._batch_pool().submit(self.hostnames.lookup, address, deadline)] = (text, address)
        if pending:
            done, late = concurrent.futures.wait(pending, timeout=deadline.remaining() + 0.05)
            for future in late:
                future.cancel()
                wanted[pending[future][0]] = hostname_block(None, hostnames.TIMEOUT)
            for future in done:
                text, address = pending[future]
                answer = future.result()
                block = hostname_block(answer.name, answer.reason, answer.verified)
                self.hostname_cache.put(address, block, answer.ttl)
                wanted[text] = block
        for result in results:
            result["hostname"] = wanted[result["ip"]]

    def _owner(self, target: IPTarget):
        """(number, organization) and the ASN network, or (None, None): no ASN file, or it does not
        know the address, or it cannot answer now (a City answer never fails for the ASN's sake)."""
        asn_db = self.asn_db
        if asn_db is None:
            return None, None
        try:
            located = asn_db.locate(target.value, target.version, target.text)
            if located is None:
                return None, None
            owner = self.owner_of(located)
        except DatabaseUnavailable:
            return None, None
        return owner, located.network

    def owner_of(self, located) -> tuple:
        """(number, organization) of a located ASN record, kept per record of its version."""
        version, record = located.version, located.record
        owner = self.asn_cache.get(version, record) if record is not None else None
        if owner is None:
            owner = document.asn_owner(self.asn_db.read(located))
            if record is not None:
                self.asn_cache.put(version, record, owner)
        return owner

    def timezone_of(self, shaped: document.ShapedRecord) -> dict:
        # The block itself is built per lookup (it carries the local time); what it names is kept.
        if shaped.time_zone:
            return document.timezone_block(shaped.time_zone, "mmdb", False, shaped.confidence)
        location = shaped.location
        latitude, longitude = location["latitude"], location["longitude"]
        if latitude is None or longitude is None:
            return document.timezone_block(None, None)
        try:
            match = self.zones.zone_at(latitude, longitude)
        except TimezoneBackendUnavailable:
            return document.timezone_block(None, None, degraded=True)
        if match is None:
            return document.timezone_block(None, None)
        return document.timezone_block(match.name, "tz_world", at_sea=match.at_sea, confidence=shaped.confidence)

    def _databases(self) -> tuple:
        """The `database` (City) and `asn_database` blocks: one per loaded file, shared by every
        document (never mutated)."""
        cached = self._database_pair
        if (cached is not None and cached[0] is self.city_db._loaded
                and (self.asn_db is None or cached[1] is self.asn_db._loaded)):
            return cached[2]
        city = self._database_block(self.city_db, ATTRIBUTIONS, self.source_label)
        asn = self._database_block(self.asn_db, ASN_ATTRIBUTIONS, None) if self.asn_db is not None else None
        self._database_pair = (self.city_db.serving(), self.asn_db.serving() if self.asn_db else None, (city, asn))
        return city, asn

    def _database_block(self, database, attributions: dict, label: str | None):
        version = database.serving()
        if version is None:
            return None
        cached = self._database_blocks.get(database.kind)
        if cached is None or cached[0] is not version:
            info = version.info
            cached = self._database_blocks[database.kind] = (version, document.database_block(
                info, label or info.source, attributions.get(info.source)))
        return cached[1]

    def _batch_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self.batch_concurrency, thread_name_prefix="batch")
            return self._pool


def _error_item(raw, error: GeoIPError) -> dict:
    query = raw.strip() if isinstance(raw, str) and len(raw) <= MAX_TARGET_LENGTH else None
    # Control characters are not echoed, and a lone surrogate (valid in JSON text, not in UTF-8)
    # could not even be serialised: both are unprintable.
    if query is not None and not query.isprintable():
        query = None
    return {"query": query, "error": error.to_dict()}


def hostname_block(name: str | None, reason: str | None, verified: bool = False) -> dict:
    """A result's `hostname`: the PTR name and whether it is forward-confirmed, or no name and
    why (never failing the lookup). Shared between results and kept for the answer's TTL."""
    error = None if reason is None else {"code": reason, "message": hostnames.REASONS[reason]}
    return {"name": name, "verified": verified, "error": error}
