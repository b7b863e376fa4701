"""The lookup service: target -> addresses -> records -> document. No Flask, no maxminddb here."""
from __future__ import annotations

import concurrent.futures
import ipaddress
import logging
import threading

from . import document
from .citydb import CityDatabase
from .city_fields import CityFields
from .errors import AddressNotFound, AddressReserved, DnsTimeout, GeoIPError, TimezoneBackendUnavailable
from .resolver import DnsResolver
from .targets import MAX_TARGET_LENGTH, DomainTarget, IPTarget, is_reserved, parse_ip, parse_target

log = logging.getLogger(__name__)

_LATITUDE, _LONGITUDE, _TIME_ZONE = (CityFields._fields.index(name) for name in ("latitude", "longitude", "time_zone"))

ATTRIBUTIONS = {
    "dbip": "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0",
    "maxmind": "This product includes GeoLite2/GeoIP2 data created by MaxMind (https://www.maxmind.com)",
}


class LookupService:
    def __init__(self, city_db: CityDatabase, resolver: DnsResolver, timezones, *, source_label: str | None = None,
                 batch_concurrency: int = 16, batch_dns_budget: float = 4.0):
        self.city_db = city_db
        self.resolver = resolver
        self.timezones = timezones
        self.source_label = source_label
        self.batch_concurrency = batch_concurrency
        self.batch_dns_budget = batch_dns_budget
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._database_block = None
        self._pool_lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------
    def lookup(self, raw: object, lang: str = "en") -> dict:
        target = parse_target(raw)
        if isinstance(target, IPTarget):
            return self._ip_document(target, lang)
        return self._domain_document(target, lang)

    def lookup_address(self, text: str, lang: str = "en") -> dict:
        """An IP-only lookup (for "me" and the MaxMind-compatible endpoint)."""
        return self._ip_document(IPTarget(parse_ip(text)), lang)

    def lookup_many(self, targets: list, lang: str = "en") -> list[dict]:
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
            futures = {pool.submit(self._domain_document, target, lang): (index, raw) for index, raw, target in domains}
            # One budget for all the batch's names: a batch of names on a silent DNS server must not
            # hold a worker for (names / concurrency) x DNS_TIMEOUT. Names still waiting then get
            # DNS_TIMEOUT, and those not started yet are never asked.
            done, pending = concurrent.futures.wait(futures, timeout=self.batch_dns_budget)
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

    def record(self, text: str):
        """Raw City record for the MaxMind-compatible endpoint: (record, network, info)."""
        address = parse_ip(text)
        if is_reserved(address):
            raise AddressReserved()
        record, network, info = self.city_db.get(address)
        if record is None:
            raise AddressNotFound()
        return address, record, network, info

    # -- steps ----------------------------------------------------------------------------
    def _ip_document(self, target: IPTarget, lang: str) -> dict:
        if is_reserved(target.address):
            raise AddressReserved()
        text = target.text
        result, info = self._result(target.address, lang, text)
        if result is None:
            raise AddressNotFound()
        return {
            "query": text,
            "kind": "ip",
            "canonical_name": None,
            "results": [result],
            "addresses_withheld": 0,
            "database": self._database(info),
        }

    def _domain_document(self, target: DomainTarget, lang: str) -> dict:
        resolution = self.resolver.resolve_addresses(target.name)
        public = []
        for text in resolution.addresses:
            address = ipaddress.ip_address(text)
            if not is_reserved(address):
                public.append(address)
        withheld = len(resolution.addresses) - len(public)
        if not public:
            # Never reveal which internal addresses a name points to.
            raise AddressReserved("The domain name resolves only to reserved (internal or special-purpose) addresses.")
        results, info = [], None
        for address in public:
            result, info = self._result(address, lang)
            if result is None:
                result = {"ip": str(address), "error": AddressNotFound().to_dict()}
            results.append(result)
        return {
            "query": target.display,
            "kind": "domain",
            "canonical_name": resolution.canonical_name,
            "results": results,
            "addresses_withheld": withheld,
            "database": self._database(info),
        }

    def _result(self, address, lang: str, text: str | None = None):
        shaped, network, info = self.city_db.derive(address, text, self._shape, lang)
        if shaped is None:
            return None, info
        return document.result(shaped, text or str(address), network, self._timezone(shaped)), info

    def _shape(self, fields: CityFields) -> document.ShapedRecord:
        """What the City adapter keeps per record: the shaped record and, when the record has no
        time zone of its own, the tz_world answer for its coordinates. A failed fallback is not
        kept: each lookup of that record asks again until the backend answers."""
        # From mmdb_records the fields are a plain tuple in CityFields' order: indexed, not named.
        latitude, longitude, time_zone = fields[_LATITUDE], fields[_LONGITUDE], fields[_TIME_ZONE]
        fallback = None
        if not time_zone and latitude is not None and longitude is not None:
            try:
                fallback = (self.timezones.zone_at(latitude, longitude),)
            except TimezoneBackendUnavailable:
                pass
        return document.shape_fields(fields, fallback)

    def _timezone(self, shaped: document.ShapedRecord) -> dict:
        # The block itself is built per lookup (it carries the local time); what it names is kept.
        if shaped.time_zone:
            return document.timezone_block(shaped.time_zone, "mmdb", confidence=shaped.confidence)
        if shaped.fallback is not None:
            match = shaped.fallback[0]
        else:
            latitude, longitude = shaped.location["latitude"], shaped.location["longitude"]
            if latitude is None or longitude is None:
                return document.timezone_block(None, None)
            try:
                match = self.timezones.zone_at(latitude, longitude)
            except TimezoneBackendUnavailable:
                return document.timezone_block(None, None, degraded=True)
        if match is None:
            return document.timezone_block(None, None)
        return document.timezone_block(match.name, "tz_world", at_sea=match.at_sea, confidence=shaped.confidence)

    def _database(self, info) -> dict | None:
        # One block per loaded file, shared by every document (never mutated).
        if info is None:
            return None
        cached = self._database_block
        if cached is None or cached[0] is not info:
            cached = self._database_block = (info, {
                "type": info.database_type,
                "build_date": info.build_date,
                "source": self.source_label or info.source,
                "attribution": ATTRIBUTIONS.get(info.source),
            })
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
