"""Lookup documents as JSON bytes for bulk output, without building each one.

Most lines of a log are public IPv4 addresses whose documents differ from those of other
addresses with the same City record only in a few values: the query and ip, the City network, the
time-zone block (its local time moves each second) and the asn block (per ASN record, around its
network). `SerializedLookups` serialises the line's real document (the lookup service's own
shaping: `shaped_record`, `timezone_of`, `owner_of`, `document.result`, `ip_document`, cut by the
field selection) once per City record with markers in those places, and keeps the bytes between
the markers as the record's template. Further addresses of the record are joined from it: in C
(mmdb_records.Ipv4Lines, both lookups and the join without a Python object per step) when both
files have the native reader, else in Python. Every other line (domains, reserved or
overlay-covered addresses, errors, addresses only the ASN file knows) goes through the lookup
service's batch path. Same bytes as `orjson.dumps(select_document(item))` for every item
(tests/test_bulk.py checks), and a sample of the templates is checked against the lookup service
itself while it runs (VERIFY_EVERY): a template that does not give back the service's document
turns templating off for the run.
"""
from __future__ import annotations

import ipaddress
import logging
import operator
import re
import socket
import struct
import time
from collections import OrderedDict

import orjson

from . import document
from .errors import GeoIPError
from .fields import Selection, _project, select_document, select_items
from .mmdb import Located
from .targets import reserved, reserved_ipv4_ranges
from .textlines import line_text

try:
    from mmdb_records import Ipv4Lines
except ImportError:  # without app/native the Python join serves
    Ipv4Lines = None

log = logging.getLogger(__name__)

_MARK = "\u2063geoip-slot-{}\u2063"  # never in a document: an invisible separator around a slot number
_QUERY, _IP, _NETWORK, _TIMEZONE, _ASN = range(5)  # the slot codes of app/native/ipv4_lines.c
# The record's blocks (document.ShapedRecord's first fields), each a slot of the layout after the per-line ones.
_RECORD_BLOCKS = document.ShapedRecord._fields[:7]
_RECORD_SLOT = 5
_RESULT_SLOTS = {"ip": _IP, "network": _NETWORK, "timezone": _TIMEZONE, "asn": _ASN,
                 **{name: _RECORD_SLOT + index for index, name in enumerate(_RECORD_BLOCKS)}}
_SLOT = re.compile(re.escape(orjson.dumps(_MARK.format("X"))).replace(b"X", b"([0-9]+)"))
_ASN_NETWORK_MARK = _MARK.format("asn-network")
_ZONE_KEYS = ("name", "source", "at_sea", "confidence", "degraded")  # document.timezone_block's arguments
_zone_key = operator.itemgetter(*_ZONE_KEYS)
_NOT_TEMPLATED = object()
VERIFY_EVERY = 256  # one template in this many is checked against the lookup service (the first always)
_inet_pton, _AF_INET, _IPv4 = socket.inet_pton, socket.AF_INET, ipaddress.IPv4Address
_new = tuple.__new__  # Located(...) is a Python-level __new__; tuple.__new__(Located, values) is C


class SerializedLookups:
    def __init__(self, service, lang: str = "en", selection: Selection | None = None, capacity: int = 131_072):
        self.service = service
        self.lang = lang
        self.selection = selection
        self.capacity = capacity  # templates kept (about 0.6 KB each), oldest made dropped first
        self.templated = self.slow = self.built = self.joined_in_c = 0
        self.disabled = False  # a checked template did not give back the service's document
        self._sources = None
        self._reset(None)

    # -- the batch ------------------------------------------------------------------------
    def many(self, lines: list) -> tuple[list[bytes], int, int]:
        """(one JSON document or error item per line in order, failed items, located results).
        A line is its bytes without the line break (None: unreadable, too long)."""
        self._check_sources()
        self._new_second()
        native = self._native if not self.disabled else None
        out = [None] * len(lines)
        if native is not None:
            # What the C join has not got for a line is made from where it found the line's
            # records (_prepare), then it joins that line like the rest.
            out = native.render(lines, self._prepare)
        pending = [index for index, encoded in enumerate(out) if encoded is None]
        self.joined_in_c += len(lines) - len(pending)
        slow_index, slow_targets = [], []
        fast = self._fast
        for index in pending:
            target = line_text(lines[index])
            try:
                encoded = fast(target) if target is not None else None
            except GeoIPError:  # a damaged file, say: the batch path gives the line its error item
                encoded = None
            if encoded is None:
                slow_index.append(index)
                slow_targets.append(target)
            else:
                out[index] = encoded
        failed = located = 0
        if slow_targets:
            items = select_items(self.service.lookup_many(slow_targets, self.lang), self.selection)
            for index, item in zip(slow_index, items):
                out[index] = orjson.dumps(item)
                if "error" in item:
                    failed += 1
                else:
                    located += sum(1 for result in item["results"] if "error" not in result)
        self.slow += len(slow_index)
        self.templated += len(lines) - len(slow_index)
        return out, failed, located + len(lines) - len(slow_index)

    def _check_sources(self) -> None:
        """Templates hold what one version of each source said: a new one starts them afresh."""
        service = self.service
        sources = (service.city_db.current(), service.asn_db.current() if service.asn_db is not None else None,
                   service.overlay.serving() if service.overlay is not None else None, service.timezones.version)
        if self._sources is None or any(a is not b and a != b for a, b in zip(sources, self._sources)):
            self._reset(sources)

    def _reset(self, sources) -> None:
        self._sources = sources
        self._templates: OrderedDict = OrderedDict()  # City record offset -> (parts, slots, zone) or _NOT_TEMPLATED
        self._asn: dict = {}       # ASN record offset -> its block's JSON around the network
        self._zone_ids: dict = {}  # timezone_block's arguments -> zone number
        self._zone_keys: list = [] # zone number -> timezone_block's arguments
        self._zones: list = []     # zone number -> the block's JSON in this second, or None
        self._zone_second = None
        self._layout = None        # (pieces, per-line slots) of this version's documents
        self._no_asn = self._asn_parts(None)[0]
        self._native = self._native_lines(sources) if sources is not None else None

    def _native_lines(self, sources):
        city, asn, overlay = sources[:3]
        if Ipv4Lines is None or city is None or city.native is None or (self.service.asn_db is not None and (
                asn is None or asn.native is None)):
            return None
        ranges = reserved_ipv4_ranges() + (overlay.table.ipv4_ranges() if overlay is not None else [])
        merged = _merged(ranges)
        packed = struct.pack(f"={2 * len(merged)}I", *(bound for pair in merged for bound in pair))
        return Ipv4Lines(city.native, asn.native if asn is not None else None, packed, self._templates, self._asn,
                         self._no_asn, self._zones)

    # -- one line in Python ---------------------------------------------------------------
    def _fast(self, raw: str) -> bytes | None:
        """The line's JSON from its City record's template (made now when there is none), or None
        when the batch path is to answer it."""
        found = self._template_of(raw)
        if found is None:
            return None
        city, asn, template, encoded = found
        return encoded if encoded is not None else self._render(template, raw, city.network, asn)

    def _prepare(self, line: bytes, city_offset: int, city_network: str, asn_offset: int | None,
                 asn_network: str | None) -> None:
        """Makes what the C join needs for a line it located (a canonical dotted quad): its City
        record's template, its ASN record's block, its time zone's block for this second."""
        if self.disabled:  # a template made in this batch disagreed with the lookup service
            return
        raw = line_text(line)
        city_version, asn_version = self._sources[:2]
        city = _new(Located, (city_version, city_offset, city_network, None))
        asn = _new(Located, (asn_version, asn_offset, asn_network, None)) if asn_offset is not None else None
        try:
            found = self._template_at(raw, city, asn, render=False)
        except GeoIPError:  # a damaged file: the line goes on to the batch path, which says so
            return
        if found is not None:
            if asn is not None:
                self._asn_parts(asn)
            self._zone_json(found[2][2])

    def _template_of(self, raw: str, render: bool = True):
        """(city, asn, the City record's template, the line's JSON when the template was made now
        and `render`), or None when the line is not one a template serves."""
        if self.disabled:
            return None
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
        return self._template_at(raw, city, asn, render)

    def _template_at(self, raw: str, city, asn, render: bool):
        """_template_of for a line whose records are located."""
        templates = self._templates
        template = templates.get(city.record)
        encoded = None
        if template is None:
            encoded, template = self._build(raw, city, asn, render)
            if template is None:
                return None
            templates[city.record] = template
            if len(templates) > self.capacity:
                templates.popitem(last=False)
        if template is _NOT_TEMPLATED:
            return None
        return city, asn, template, encoded

    def _render(self, template, raw: str, network: str, asn) -> bytes:
        parts, slots, zone = template
        quoted = b'"' + raw.encode() + b'"'
        pieces = [parts[0]]
        for slot, part in zip(slots, parts[1:]):
            if slot == _QUERY or slot == _IP:
                pieces.append(quoted)
            elif slot == _NETWORK:
                pieces.append(b'"' + network.encode() + b'"')
            elif slot == _ASN:
                around = self._asn_parts(asn)
                pieces.append(around[0] if len(around) == 1 else around[0] + orjson.dumps(asn.network) + around[1])
            else:
                pieces.append(self._zone_json(zone))
            pieces.append(part)
        return b"".join(pieces)

    def _zone_json(self, zone: int) -> bytes:
        encoded = self._zones[zone]
        if encoded is None:
            block = document.timezone_block(*self._zone_keys[zone])  # shared per zone and second
            encoded = self._zones[zone] = orjson.dumps(self._selected("timezone", block))
        return encoded

    def _asn_parts(self, asn) -> tuple:
        """The result's `asn` as JSON (selected like the rest), per ASN record: (whole,), or
        (before, after) around the network."""
        key = None if asn is None else asn.record
        around = self._asn.get(key) if key is not None else None
        if around is None:
            owner = None if asn is None else self.service.owner_of(asn)
            encoded = orjson.dumps(self._selected("asn", document.asn_block(owner, _ASN_NETWORK_MARK)))
            marker = orjson.dumps(_ASN_NETWORK_MARK)
            around = tuple(encoded.split(marker, 1)) if marker in encoded else (encoded,)
            if key is not None:
                if len(self._asn) > self.capacity:
                    self._asn.clear()
                self._asn[key] = around
        return around

    def _selected(self, block_name: str, value):
        wanted = self.selection.get(block_name, True) if self.selection else True
        return value if wanted is True or value is None else _project(value, wanted)

    # -- templates ------------------------------------------------------------------------
    # A template is made in two steps. The layout, once per version of the sources: one real
    # document serialised with a marker in each slot, the per-line ones and each block of the
    # record (document.ShapedRecord's), cut at the per-line slots into pieces. A piece is bytes,
    # or (prefix, keys, record indexes, suffix) for one holding the record's blocks: those are
    # next to each other in a result, so they are serialised with one orjson call, as a map whose
    # braces are cut off. Then per City record: each piece with the record's blocks in it.
    def _build(self, raw: str, city, asn, render: bool = True) -> tuple[bytes | None, object]:
        """(the line's own JSON when `render`, else None; the City record's template: (parts, slots, zone),
        _NOT_TEMPLATED when its document is not the single-result shape of the layout, or None
        when it is not to be kept now: a time zone the index could not give)."""
        service = self.service
        shaped = service.shaped_record(city, self.lang, keep=False)
        timezone = service.timezone_of(shaped)
        if timezone["degraded"]:
            return None, None  # the batch path answers it, flagged; the next line tries again
        layout = self._layout
        if layout is None:
            layout = self._layout = self._make_layout(raw, city, asn, shaped, timezone)
        if layout is _NOT_TEMPLATED:
            return None, _NOT_TEMPLATED
        pieces, line_slots = layout
        record_json = self._record_json
        parts = tuple([piece if type(piece) is bytes else record_json(piece, shaped) for piece in pieces])
        template = (parts, line_slots, self._zone_id(_zone_key(timezone)))
        if self.built % VERIFY_EVERY == 0 and not self._agrees(template, raw, city.network, asn):
            self.disabled = True
            log.warning("bulk templates disagree with the lookup service: every line is looked up on its own")
            return None, None
        self.built += 1
        return (self._render(template, raw, city.network, asn) if render else None), template

    def _record_json(self, piece: tuple, shaped) -> bytes:
        prefix, keys, indexes, suffix = piece
        if self.selection:
            selected = self._selected
            blocks = {key: selected(key, shaped[index]) for key, index in zip(keys, indexes)}
        else:
            blocks = {key: shaped[index] for key, index in zip(keys, indexes)}
        return prefix + orjson.dumps(blocks)[1:-1] + suffix

    def _make_layout(self, raw: str, city, asn, shaped, timezone):
        """(pieces, the per-line slots as bytes) of one real document with every slot marked, or
        _NOT_TEMPLATED when an IP document is not one result (then no line is templated)."""
        service = self.service
        owner = service.owner_of(asn) if asn is not None else None
        asn_block = document.asn_block(owner, asn.network) if owner is not None else None
        real = select_document(service.ip_document(raw, document.result(shaped, raw, city.network, timezone,
                                                                         asn_block)), self.selection)
        results = real.get("results") or []
        if len(results) != 1:
            return _NOT_TEMPLATED
        marked = dict(real)
        result = dict(results[0])
        marked["results"] = [result]
        if "query" in marked:
            marked["query"] = _MARK.format(_QUERY)
        for key, slot in _RESULT_SLOTS.items():
            if key in result:
                result[key] = _MARK.format(slot)
        split = _SLOT.split(orjson.dumps(marked))  # the text, with the slot numbers between its pieces
        texts, slots = split[::2], [int(slot) for slot in split[1::2]]
        pieces = _pieces(texts, slots)
        if pieces is None:
            return _NOT_TEMPLATED
        return pieces, bytes(slot for slot in slots if slot < _RECORD_SLOT)

    def _agrees(self, template, raw: str, network: str, asn) -> bool:
        """Whether the template gives back the lookup service's own document for this line (tried
        twice: a second may end between the two)."""
        for _ in range(2):
            self._new_second()
            expected = orjson.dumps(select_document(self.service.lookup(raw, self.lang), self.selection))
            if self._render(template, raw, network, asn) == expected:
                return True
        return False

    def _new_second(self) -> None:
        """Every time-zone block is made again in a new second."""
        second = int(time.time())
        if second != self._zone_second:
            self._zone_second = second
            self._zones[:] = [None] * len(self._zones)

    def _zone_id(self, key: tuple) -> int:
        zone = self._zone_ids.get(key)
        if zone is None:
            zone = self._zone_ids[key] = len(self._zones)
            self._zones.append(None)
            self._zone_keys.append(key)
        return zone


def _pieces(texts: list[bytes], slots: list[int]) -> tuple | None:
    """The layout's pieces from the marked document's texts between its slots: one per text
    between per-line slots, the record's blocks in it as (prefix, keys, record indexes, suffix).
    None when a record block is not next to the one before it (then nothing is templated)."""
    pieces, text, run = [], texts[0], None  # run: [prefix, keys, indexes] of the piece being cut
    for slot, after in zip(slots, texts[1:]):
        if slot < _RECORD_SLOT:
            pieces.append(text if run is None else (run[0], tuple(run[1]), tuple(run[2]), text))
            run = None
        else:
            name = _RECORD_BLOCKS[slot - _RECORD_SLOT]
            key = orjson.dumps(name) + b":"
            if run is None and text.endswith(key):
                run = [text[:-len(key)], [name], [slot - _RECORD_SLOT]]
            elif run is not None and text == b"," + key:
                run[1].append(name)
                run[2].append(slot - _RECORD_SLOT)
            else:
                return None
        text = after
    pieces.append(text if run is None else (run[0], tuple(run[1]), tuple(run[2]), text))
    return tuple(pieces)


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint ranges covering the same addresses."""
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [(first, last) for first, last in merged]
