"""The shape of a lookup document, declared once: each block, its fields, their JSON types,
whether they may be null, and what they mean.

app/document.py (and `lookup.hostname_block`, `lookup._error_item`) build documents of this
shape. From this declaration come:
- the OpenAPI component schemas of documents, results, their blocks and error bodies
  (`component_schemas()`, served by app/http/openapi.py), with the "Selected..." forms that
  documents cut down by ?fields= validate against;
- the paths ?fields= accepts (app/fields.py);
- tests/test_document_shape.py holds real documents of every kind against it key by key, so a
  field shaped in document.py and not declared here fails there.

Values read from a City or ASN record take their JSON type from the record field's kind
(app/record_fields.py) and may always be null: a record may lack any of them.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple, Union

from . import hostnames
from .overlay.geofeed import OVERLAY_FIELDS
from .record_fields import ASN, CITY, FieldTable


class Scalar(NamedTuple):
    """A JSON value that is not a block: its type ("string", "integer", "number", "boolean"), or
    the values it may take (`enum`, type None), and further JSON Schema keywords (`keywords`)."""

    type: str | None
    enum: tuple = ()
    keywords: MappingProxyType = MappingProxyType({})


class Block:
    """A JSON object with exactly these fields. `component` names its OpenAPI schema (an unnamed
    block is written out where it is used)."""

    def __init__(self, fields: dict[str, "Field"], component: str | None = None, description: str | None = None):
        self.fields = MappingProxyType(fields)
        self.component = component
        self.description = description

    def __repr__(self) -> str:
        return f"Block({self.component or ', '.join(self.fields)})"


class ListOf(NamedTuple):
    items: "Value"
    min_items: int = 0


class OneOf(NamedTuple):
    """Exactly one of these blocks (a result, or an address that could not be located)."""

    choices: tuple


Value = Union[Scalar, Block, ListOf, OneOf]


class Field(NamedTuple):
    value: Value
    description: str
    nullable: bool = False
    always: bool = False    # kept whatever ?fields= selects (a document's envelope, a result's ip)
    optional: bool = False  # present only when asked for (a result's hostname)


def _scalar(type_: str, description: str, nullable: bool = False, always: bool = False, **keywords) -> Field:
    return Field(Scalar(type_, keywords=MappingProxyType(keywords)), description, nullable, always)


def string(description: str, nullable: bool = False, always: bool = False, **keywords) -> Field:
    return _scalar("string", description, nullable, always, **keywords)


def integer(description: str, nullable: bool = False, **keywords) -> Field:
    return _scalar("integer", description, nullable, **keywords)


def boolean(description: str, nullable: bool = False) -> Field:
    return _scalar("boolean", description, nullable)


def choice(values, description: str, nullable: bool = False, always: bool = False) -> Field:
    return Field(Scalar(None, tuple(values)), description, nullable, always)


# The JSON type of each record field kind that a document carries as it is.
_KIND_TYPES = {"text": "string", "name": "string", "whole": "integer", "real": "number", "flag": "boolean"}


def recorded(table: FieldTable, name: str, description: str) -> Field:
    """A value as the record field `name` of `table` reads it: that kind's type, null when absent."""
    [field] = [field for field in table.fields if field.name == name]
    return Field(Scalar(_KIND_TYPES[field.kind]), description, nullable=True)


_SUBDIVISION_TABLE = next(field.items for field in CITY.fields if field.name == "subdivisions")

ERROR_DETAIL = Block({
    "code": string("A stable error code, e.g. IP_ADDRESS_NOT_FOUND"),
    "message": string("What went wrong, in English (never the raw input)"),
})

ERROR = Block({"error": Field(ERROR_DETAIL, "What went wrong")}, component="Error", description="An error response")

TIMEZONE_SOURCES = ("mmdb", "tz_world", "overlay")
CONFIDENCES = ("exact", "approximate")

TIMEZONE = Block({
    "name": string("IANA time zone, e.g. Europe/London", nullable=True),
    "source": choice(TIMEZONE_SOURCES, "Where the zone comes from: the database record, the tz_world polygons "
                                       "at its coordinates, or the overlay", nullable=True),
    "utc_offset": string("Its offset from UTC now, e.g. +01:00", nullable=True, pattern="^[+-][0-9]{2}:[0-9]{2}$"),
    "local_time": string("The local time there now (ISO 8601 with offset)", nullable=True),
    "at_sea": boolean("The coordinates are at sea (the zone is an ocean's)"),
    "confidence": choice(CONFIDENCES, "exact for a city's location; approximate for a country's or region's centroid",
                         nullable=True),
    "degraded": boolean("The time-zone backend could not answer, so the zone is missing"),
}, component="TimeZone", description="The time zone of a result's location, with its local time now")

ASN_BLOCK = Block({
    "number": recorded(ASN, "number", "Autonomous system number, e.g. 15169"),
    "organization": recorded(ASN, "organization", "Its organisation, e.g. Google LLC"),
    "network": string("The network the ASN database answers with (may differ from the result's City network)"),
}, component="Asn", description="Who announces the address's network (the ASN database)")

OVERLAY = Block({
    "prefix": string("The entry's prefix, e.g. 192.0.2.0/24"),
    "file": string("The geofeed file it comes from"),
    "fields": Field(ListOf(Scalar(None, OVERLAY_FIELDS)), "What it sets"),
}, component="Overlay", description="The overlay entry that set fields of a result")

HOSTNAME = Block({
    "name": string("The PTR name; null when there is none (see error)", nullable=True),
    "verified": boolean("The name's A/AAAA records contain the address (forward-confirmed reverse DNS)"),
    "error": Field(ERROR_DETAIL, "Why there is no name: " + ", ".join(hostnames.REASONS), nullable=True),
}, component="Hostname", description="The address's PTR name and whether it is forward-confirmed")

RESULT = Block({
    "ip": string("The address", always=True),
    "network": string("The network the databases (or the overlay entry) answer with, e.g. 81.2.69.0/24"),
    "city": Field(Block({
        "name": recorded(CITY, "city_name", "The city's name in the asked language"),
        "geoname_id": recorded(CITY, "city_geoname_id", "Its GeoNames id"),
    }), "The city"),
    "subdivisions": Field(ListOf(Block({
        "iso_code": recorded(_SUBDIVISION_TABLE, "iso_code", "ISO 3166-2 code without the country, e.g. ENG"),
        "name": recorded(_SUBDIVISION_TABLE, "name", "Its name in the asked language"),
    })), "Regions, largest first"),
    "country": Field(Block({
        "iso_code": recorded(CITY, "country_iso", "ISO 3166-1 alpha-2 code, e.g. GB"),
        "name": recorded(CITY, "country_name", "Its name in the asked language"),
        "is_in_european_union": recorded(CITY, "country_eu", "A member of the European Union"),
    }), "Where the address is located"),
    "continent": Field(Block({
        "code": recorded(CITY, "continent_code", "Two-letter continent code, e.g. EU"),
        "name": recorded(CITY, "continent_name", "Its name in the asked language"),
    }), "The country's continent"),
    "registered_country": Field(Block({
        "iso_code": recorded(CITY, "registered_iso", "ISO 3166-1 alpha-2 code"),
        "name": recorded(CITY, "registered_name", "Its name in the asked language"),
    }), "Where the network is registered (may differ from country)"),
    "postal": Field(Block({
        "code": recorded(CITY, "postal_code", "The postal code"),
    }), "The postal code"),
    "location": Field(Block({
        "latitude": recorded(CITY, "latitude", "Latitude in degrees (WGS 84)"),
        "longitude": recorded(CITY, "longitude", "Longitude in degrees (WGS 84)"),
        "accuracy_radius": recorded(CITY, "accuracy_radius", "Radius in km around the coordinates the address "
                                                             "is likely within"),
    }), "Coordinates"),
    "timezone": Field(TIMEZONE, "The time zone, with its local time now"),
    "asn": Field(ASN_BLOCK, "Who announces the address's network; null without an ASN database (GEOIP_ASN_DB) "
                            "or when it does not know the address", nullable=True),
    "overlay": Field(OVERLAY, "The overlay entry (GEOIP_OVERLAY, docs/overlay.md) that set fields of this "
                              "result; null when none did", nullable=True),
    "hostname": Field(HOSTNAME, "The PTR name, with ?hostname=1 only", optional=True),
}, component="Result", description="Where one address is and who owns its network")

UNLOCATED_ADDRESS = Block({
    "ip": string("An address of the domain"),
    "error": Field(ERROR_DETAIL, "Why it has no result (IP_ADDRESS_NOT_FOUND)"),
}, component="UnlocatedAddress", description="An address of a domain that no database knows")

DATABASE = Block({
    "type": string("The file's database type, e.g. GeoLite2-City"),
    "build_date": string("When it was built", format="date"),
    "source": string("Where it comes from, e.g. maxmind, dbip"),
    "attribution": string("The attribution its licence requires", nullable=True),
}, component="DatabaseBlock", description="The database file that answered")

DOCUMENT = Block({
    "query": string("The target as asked (a domain in its display form)", always=True),
    "kind": choice(("ip", "domain"), "What the target is", always=True),
    "canonical_name": string("The domain's canonical name after CNAMEs; null for an address", nullable=True),
    "results": Field(ListOf(OneOf((RESULT, UNLOCATED_ADDRESS)), min_items=1),
                     "One per public address of the target", always=True),
    "addresses_withheld": integer("The domain's internal (reserved) addresses, never shown", minimum=0),
    "database": Field(DATABASE, "The City database answering; null when none is loaded", nullable=True,
                      always=True),
    "asn_database": Field(DATABASE, "The ASN database answering; null when none is configured or loaded",
                          nullable=True, always=True),
}, component="Document", description="The answer for one target: an address or every public "
                                       "address of a domain")

BATCH_ITEM_ERROR = Block({
    "query": string("The target as given; null when it cannot be shown (not a string, too long, unprintable)",
                    nullable=True),
    "error": Field(ERROR_DETAIL, "Why this target has no document"),
}, component="BatchItemError", description="A batch target that has no document")


# -- the OpenAPI schemas --------------------------------------------------------------------
_REF = "#/components/schemas/"


def blocks(*roots: Value) -> list[Block]:
    """Every block in these values, each once, the roots first."""
    found: list[Block] = []
    pending = list(reversed(roots))
    while pending:
        value = pending.pop()
        if isinstance(value, ListOf):
            pending.append(value.items)
        elif isinstance(value, OneOf):
            pending.extend(reversed(value.choices))
        elif isinstance(value, Block) and not any(value is block for block in found):
            found.append(value)
            pending.extend(reversed([field.value for field in value.fields.values()]))
    return found


def _components(*roots: Block) -> dict[str, Block]:
    found: dict[str, Block] = {}
    for block in blocks(*roots):
        if block.component is not None and found.setdefault(block.component, block) is not block:
            raise ValueError(f"two blocks are named {block.component}")
    return found


COMPONENTS = _components(DOCUMENT, BATCH_ITEM_ERROR, ERROR)
# What ?fields= cuts down: the document's envelope and a result with everything in it.
CUT = {DOCUMENT.component} | set(_components(RESULT))


def component_schemas() -> dict:
    """Every declared block's schema by name, and a "Selected" form of each block ?fields= cuts
    down (only what is always kept is required; what it holds keeps its types)."""
    schemas = {name: _object_schema(block, cut=False) for name, block in COMPONENTS.items()}
    schemas.update({"Selected" + name: _object_schema(COMPONENTS[name], cut=True) for name in sorted(CUT)})
    return schemas


def _object_schema(block: Block, cut: bool) -> dict:
    fields = block.fields
    schema = {
        "type": "object",
        "properties": {name: _field_schema(field, cut) for name, field in fields.items()},
        "required": [name for name, field in fields.items() if (field.always if cut else not field.optional)],
        "additionalProperties": False,
    }
    if block.description:
        schema["description"] = block.description
    return schema


def _field_schema(field: Field, cut: bool) -> dict:
    schema = _value_schema(field.value, cut)
    if field.nullable:
        if "enum" in schema:
            schema = {**schema, "enum": [*schema["enum"], None]}
        elif schema.get("type") not in (None, "object", "array"):
            schema = {**schema, "type": [schema["type"], "null"]}
        else:
            schema = {"oneOf": [{"type": "null"}, schema]}
    return {**schema, "description": field.description}


def _value_schema(value: Value, cut: bool) -> dict:
    if isinstance(value, Block):
        if value.component is None:
            return _object_schema(value, cut)
        selected = cut and value.component in CUT
        return {"$ref": _REF + ("Selected" if selected else "") + value.component}
    if isinstance(value, ListOf):
        schema = {"type": "array", "items": _value_schema(value.items, cut)}
        if value.min_items:
            schema["minItems"] = value.min_items
        return schema
    if isinstance(value, OneOf):
        return {"oneOf": [_value_schema(block, cut) for block in value.choices]}
    if value.type is None:
        return {"enum": list(value.enum)}
    return {"type": value.type, **value.keywords}
