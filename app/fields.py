"""Field selection (`?fields=city.name,country.iso_code`): which paths of a result document a
caller wants, checked against the document schema, and the document cut down to them.

The allowed paths are derived from the OpenAPI schema of a result (app/http/openapi.py), the one
declaration of what a document holds: a block's name means the whole block, `block.field` one
of its fields (in each element, for a list such as `subdivisions`). What identifies a document
and its results stays whatever is asked for: `query`, `kind`, `results`, each result's `ip`, an
unlocated address's error, and the database blocks, whose attributions the data's licences
require; the document's other fields (DOCUMENT_PATHS) are selectable like a result's.
"""
from __future__ import annotations

from functools import lru_cache

from .errors import InvalidFields

MAX_FIELDS_LENGTH = 2048
MAX_PATHS = 64

DOCUMENT_PATHS = ("canonical_name", "addresses_withheld")

Selection = dict  # name -> True (the whole value) or a nested Selection


def _root() -> dict:
    from .http.openapi import openapi_document  # the schema lives with the HTTP layer's description
    return openapi_document()


def _resolve(node: dict, root: dict) -> dict:
    while "$ref" in node:  # a JSON pointer into the OpenAPI document: "#/components/schemas/Asn"
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _object_properties(node: dict, root: dict) -> dict:
    """The properties of an object schema, looking through $ref, arrays and nullable oneOf/anyOf."""
    node = _resolve(node, root)
    if node.get("type") == "array" or "items" in node:
        return _object_properties(node.get("items", {}), root)
    properties = dict(node.get("properties", {}))
    for branch in [*node.get("oneOf", ()), *node.get("anyOf", ()), *node.get("allOf", ())]:
        properties.update(_object_properties(branch, root))
    return properties


def _paths(properties: dict, root: dict, prefix: str = "") -> list[str]:
    paths = []
    for name, child in properties.items():
        path = prefix + name
        paths.append(path)
        paths.extend(_paths(_object_properties(child, root), root, path + "."))
    return paths


@lru_cache(maxsize=1)
def allowed_paths() -> tuple[str, ...]:
    root = _root()
    result = root["components"]["schemas"]["Result"]["properties"]
    return tuple(DOCUMENT_PATHS) + tuple(_paths(result, root))


# The schemas whose fields can be left out; their "Selected" forms describe documents with ?fields=.
_SELECTABLE = ("Document", "Result", "TimeZone", "Asn", "Overlay", "Hostname")


def selected_schemas(schemas: dict) -> dict:
    """The "Selected..." schemas: the same as the full ones, with only what always stays
    required (a document's envelope, a result's ip); what they hold keeps its types."""
    def relax(node, keep=()):
        if isinstance(node, list):
            return [relax(item) for item in node]
        if not isinstance(node, dict):
            return node
        relaxed = {}
        for key, value in node.items():
            if key == "$ref" and value.rsplit("/", 1)[-1] in _SELECTABLE:
                base, name = value.rsplit("/", 1)
                relaxed[key] = f"{base}/Selected{name}"
            elif key == "required":
                relaxed[key] = [name for name in value if name in keep]
            elif key == "properties":
                relaxed[key] = {name: relax(child) for name, child in value.items()}
            else:
                relaxed[key] = relax(value)
        return relaxed

    selected = {}
    for name in _SELECTABLE:
        if name not in schemas:
            continue
        schema = schemas[name]
        if name == "Document":
            keep = [key for key in schema.get("required", ()) if key not in DOCUMENT_PATHS]
        else:
            keep = ["ip"] if name == "Result" else []
        selected["Selected" + name] = relax(schema, keep)
    return selected


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
    kept = {key: value for key, value in document.items() if key not in DOCUMENT_PATHS or key in selection}
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
