"""Lookup documents as JSON bytes for bulk output, without building each one.

Most lines of a log are public IPv4 addresses whose documents differ from those of other
addresses with the same City and ASN records only in a few values: the query and ip, the two
networks and the time-zone block (its local time moves each second). `SerializedLookups`
serialises one real document per pair of records (the lookup service's own, cut by the field
selection) with markers in those places, keeps the bytes between the markers, and for each
further address joins them with its own values. A template is used only after it rebuilt its
own document byte for byte; every other line (domains, reserved or overlay-covered addresses,
errors, hostnames) goes through the lookup service's batch path. Same bytes as
`orjson.dumps(select_document(item))` for every item (tests/test_bulk.py checks).
"""
from __future__ import annotations

import ipaddress
import socket
from collections import OrderedDict

import orjson

from .document import asn_block as document_asn_block
from .fields import Selection, _project, select_document, select_items
from .targets import reserved

_MARK = "\u2063geoip-slot-{}\u2063"  # never in a document: an invisible separator around a slot number
_QUERY, _IP, _NETWORK, _TIMEZONE, _ASN = range(5)
_MARKS = [orjson.dumps(_MARK.format(slot)) for slot in range(5)]
_ASN_NETWORK_MARK = _MARK.format("asn-network")
_NOT_TEMPLATED = object()
_inet_pton, _AF_INET, _IPv4 = socket.inet_pton, socket.AF_INET, ipaddress.IPv4Address


class SerializedLookups:
    def __init__(self, service, lang: str = "en", selection: Selection | None = None, capacity: int = 30_000):
        self.service = service
        self.lang = lang
        self.selection = selection
        self.capacity = capacity
        self._templates: OrderedDict = OrderedDict()  # per City record: about 1.5 KB each
        self._timezones: dict[int, tuple[dict, bytes]] = {}
        self._asn: dict = {}  # per ASN record: its block's JSON around the network
        self.templated = self.slow = 0

    def many(self, targets: list) -> tuple[list[bytes], int, int]:
        """(one JSON document or error item per target in order, failed items, located results)."""
        out: list = [None] * len(targets)
        failed = located = 0
        slow: list[int] = []
        fast = self._fast
        for index, raw in enumerate(targets):
            encoded = fast(raw)
            if encoded is None:
                slow.append(index)
            else:
                out[index] = encoded
        if slow:
            items = select_items(self.service.lookup_many([targets[index] for index in slow], self.lang),
                                 self.selection)
            for index, item in zip(slow, items):
                out[index] = orjson.dumps(item)
                if "error" in item:
                    failed += 1
                else:
                    located += sum(1 for result in item["results"] if "error" not in result)
        self.slow += len(slow)
        self.templated += len(targets) - len(slow)
        return out, failed, located + len(targets) - len(slow)

    def _fast(self, raw) -> bytes | None:
        try:  # a dotted quad exactly as inet_pton takes it is its own canonical text
            value = int.from_bytes(_inet_pton(_AF_INET, raw), "big")
        except (OSError, TypeError, ValueError):
            return None
        service = self.service
        if reserved(value, 4) or (service.overlay is not None and service.overlay.lookup(_IPv4(value)) is not None):
            return None
        city = service.city_db.locate(value, 4, raw)
        if city is None or city.record is None:
            return None
        asn = None
        if service.asn_db is not None:
            asn = service.asn_db.locate(value, 4, raw)
            if asn is not None and asn.record is None:
                return None
        templates = self._templates
        key = (city.version, city.record)
        template = templates.get(key)
        if template is None:
            encoded, template = self._build(raw, city, asn)
            templates[key] = template
            if len(templates) > self.capacity:
                templates.popitem(last=False)
            return encoded  # the line's own document, serialised while the template was made
        if template is _NOT_TEMPLATED:
            return None
        templates.move_to_end(key)
        return self._render(template, raw, city.network, asn)

    def _render(self, template, raw: str, network: str, asn) -> bytes:
        parts, slots, shaped = template
        quoted = b'"' + raw.encode() + b'"'
        pieces = [parts[0]]
        for slot, part in zip(slots, parts[1:]):
            if slot == _QUERY or slot == _IP:
                pieces.append(quoted)
            elif slot == _NETWORK:
                pieces.append(b'"' + network.encode() + b'"')
            elif slot == _ASN:
                pieces.append(self._asn_json(asn))
            else:
                pieces.append(self._timezone_json(shaped))
            pieces.append(part)
        return b"".join(pieces)

    def _timezone_json(self, shaped) -> bytes:
        block = self.service._timezone(shaped)  # shared per zone and second by document.timezone_block
        cached = self._timezones.get(id(block))
        if cached is None or cached[0] is not block:
            wanted = self.selection.get("timezone", True) if self.selection else True
            value = block if wanted is True else _project(block, wanted)
            if len(self._timezones) > 256:
                self._timezones.clear()
            cached = self._timezones[id(block)] = (block, orjson.dumps(value))
        return cached[1]

    def _asn_json(self, asn) -> bytes:
        """The result's `asn` as JSON (selected like the rest): per ASN record, around its network."""
        if asn is None:
            key, network = None, None
        else:
            key, network = (asn.version, asn.record), asn.network
        around = self._asn.get(key)
        if around is None:
            owner = None if asn is None else self.service._owner_of(asn)
            block = document_asn_block(owner, _ASN_NETWORK_MARK)
            wanted = self.selection.get("asn", True) if self.selection else True
            encoded = orjson.dumps(block if wanted is True else _project(block, wanted))
            marker = orjson.dumps(_ASN_NETWORK_MARK)
            around = tuple(encoded.split(marker, 1)) if marker in encoded else (encoded,)
            if len(self._asn) > self.capacity:
                self._asn.clear()
            self._asn[key] = around
        if len(around) == 1:
            return around[0]
        return around[0] + orjson.dumps(network) + around[1]

    def _build(self, raw: str, city, asn) -> tuple[bytes | None, object]:
        """(the line's own JSON, the template for its City record or _NOT_TEMPLATED when its
        document is not the plain single-result shape the markers assume)."""
        service = self.service
        document = select_document(service.lookup(raw, self.lang), self.selection)
        encoded = orjson.dumps(document)
        shaped = service.city_cache.get(city.version, (city.record, self.lang))
        results = document.get("results") or []
        if shaped is None or len(results) != 1 or "error" in results[0]:
            return encoded, _NOT_TEMPLATED
        marked = dict(document)
        result = dict(results[0])
        marked["results"] = [result]
        if "query" in marked:
            marked["query"] = _MARK.format(_QUERY)
        result["ip"] = _MARK.format(_IP)
        if "network" in result:
            result["network"] = _MARK.format(_NETWORK)
        if "timezone" in result:
            result["timezone"] = _MARK.format(_TIMEZONE)
        if "asn" in result:
            result["asn"] = _MARK.format(_ASN)
        parts, slots, rest = [], [], orjson.dumps(marked)
        while True:
            found = [(rest.find(mark), slot) for slot, mark in enumerate(_MARKS) if mark in rest]
            if not found:
                parts.append(rest)
                break
            position, slot = min(found)
            parts.append(rest[:position])
            slots.append(slot)
            rest = rest[position + len(_MARKS[slot]):]
        # What the time zone is worked out from is all a template keeps of the shaped record.
        template = (parts, slots, shaped._replace(city=None, subdivisions=None, country=None, continent=None,
                                                  registered_country=None, postal=None))
        # Used only when it gives back the document it was made from, byte for byte (a second
        # that ends meanwhile moves the local time: the next line of this record makes it again).
        if self._render(template, raw, city.network, asn) != encoded:
            return encoded, None
        return encoded, template

