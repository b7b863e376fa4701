"""Field selection (`?fields=city.name,country.iso_code`): which paths of a result document a
caller wants, checked against the document schema, and the document cut down to them.

The allowed paths are derived from the OpenAPI schema of a result (app/http/openapi.py), the one
declaration of what a document holds: a block's name means the whole block, `block.field` one
of its fields (in each element, for a list such as `subdivisions`). What identifies a document
and its results stays whatever is asked for: `query`, `kind`, `results`, each result's `ip`, an
unlocated address's error, and `database` and `asn_database`, whose attributions the data's
licences require.
"""
from __future__ import annotations

from functools import lru_cache

from .errors import InvalidFields

MAX_FIELDS_LENGTH = 2048
MAX_PATHS = 64

ALWAYS_KEPT = ("query", "kind", "results", "database", "asn_database")
DOCUMENT_PATHS = ("canonical_name", "addresses_withheld")

Selection = dict  # name -> True (the whole value) or a nested Selection


def _schemas() -> dict:
    from .http.openapi import openapi_document  # the schema lives with the HTTP layer's description
    return openapi_document()["components"]["schemas"]


def _resolve(node: dict, schemas: dict) -> dict:
    while "$ref" in node:
        node = schemas[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _object_properties(node: dict, schemas: dict) -> dict:
    """The properties of an object schema, looking through $ref, arrays and nullable oneOf/anyOf."""
    node = _resolve(node, schemas)
    if node.get("type") == "array" or "items" in node:
        return _object_properties(node.get("items", {}), schemas)
    properties = dict(node.get("properties", {}))
    for branch in (*node.get("oneOf", ()), *node.get("anyOf", ()), *node.get("allOf", ())):
        properties.update(_object_properties(branch, schemas))
    return properties


def _paths(properties: dict, schemas: dict, prefix: str = "") -> list[str]:
    paths = []
    for name, child in properties.items():
        path = prefix + name
        paths.append(path)
        paths.extend(_paths(_object_properties(child, schemas), schemas, path + "."))
    return paths


@lru_cache(maxsize=1)
def allowed_paths() -> tuple[str, ...]:
    schemas = _schemas()
    result_paths = _paths(_resolve({"$ref": "Result"}, schemas)["properties"], schemas)
    return tuple(DOCUMENT_PATHS) + tuple(result_paths)


def parse_fields(raw: object) -> Selection | None:
    """`fields` as given (a comma-separated string, or a list of strings from a batch body) ->
    a Selection, or None when absent. InvalidFields names the allowed paths, never the input."""
    if raw is None:
        return None
    if isinstance(raw, str):
        if len(raw) > MAX_FIELDS_LENGTH:
            raise _invalid()
        items = raw.split(",")
    elif isinstance(raw, list) and len(raw) <= MAX_PATHS and all(isinstance(item, str) for item in raw):
        items = raw
    else:
        raise _invalid()
    paths = [item.strip() for item in items]
    if not paths or len(paths) > MAX_PATHS or not all(paths):
        raise _invalid()
    allowed = set(allowed_paths())
    if not all(path in allowed for path in paths):
        raise _invalid()
    selection: Selection = {}
    for path in paths:
        node = selection
        *parents, leaf = path.split(".")
        for name in parents:
            child = node.get(name)
            if child is True:  # the whole block is wanted already
                break
            node = node.setdefault(name, {})
        else:
            node[leaf] = True
    return selection


def _invalid() -> InvalidFields:
    return InvalidFields("fields must be a comma-separated list of these paths (a block name means the whole "
                         "block): " + ",".join(allowed_paths()) + ".")


def select_document(document: dict, selection: Selection | None) -> dict:
    """The document with only the selected paths (and what always stays); never mutates it (its
    blocks are shared with other documents)."""
    if selection is None or "results" not in document:  # an error item is kept whole
        return document
    kept = {}
    for key, value in document.items():
        if key in ALWAYS_KEPT:
            kept[key] = value
        elif key in selection:
            kept[key] = value
    kept["results"] = [_select_result(result, selection) for result in document["results"]]
    return kept


def _select_result(result: dict, selection: Selection) -> dict:
    if "error" in result:
        return result
    kept = {"ip": result["ip"]}
    for key, value in result.items():
        wanted = selection.get(key)
        if wanted is not None and key != "ip":
            kept[key] = value if wanted is True else _project(value, wanted)
    return kept


def _project(value, selection: Selection):
    if isinstance(value, dict):
        return {key: (item if selection[key] is True else _project(item, selection[key]))
                for key, item in value.items() if key in selection}
    if isinstance(value, list):
        return [_project(item, selection) for item in value]
    return value  # null (an absent block)


def select_items(items: list[dict], selection: Selection | None) -> list[dict]:
    return items if selection is None else [select_document(item, selection) for item in items]
