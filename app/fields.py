"""Field selection (`?fields=city.name,country.iso_code`): which paths of a result document a
caller wants, checked against the declared shape of a document, and the document cut down to them.

The allowed paths are derived from the declaration of a document's shape (app/document_shape.py):
every field of a result, a block's name meaning the whole block and `block.field` one of its
fields (in each element, for a list such as `subdivisions`). What identifies a document and its
results stays whatever is asked for (the fields declared `always`): `query`, `kind`, `results`,
each result's `ip`, an unlocated address's error, and the database blocks, whose attributions
the data's licences require; the document's other fields (DOCUMENT_PATHS) are selectable like a
result's. The "Selected..." schemas partial documents validate against come from the same
declaration (document_shape.component_schemas).
"""
from __future__ import annotations

from functools import lru_cache

from .document_shape import DOCUMENT, RESULT, Block, ListOf
from .errors import InvalidFields

MAX_FIELDS_LENGTH = 2048
MAX_PATHS = 64

# The document's own fields a caller may leave out; the rest of its envelope is always kept.
DOCUMENT_PATHS = tuple(name for name, field in DOCUMENT.fields.items() if not field.always)

Selection = dict  # name -> True (the whole value) or a nested Selection


def _block_inside(value) -> Block | None:
    """The block a field holds, itself or as the items of a list (subdivisions)."""
    if isinstance(value, ListOf):
        value = value.items
    return value if isinstance(value, Block) else None


def _paths(block: Block, prefix: str = "") -> list[str]:
    paths = []
    for name, field in block.fields.items():
        path = prefix + name
        paths.append(path)
        inner = _block_inside(field.value)
        if inner is not None:
            paths.extend(_paths(inner, path + "."))
    return paths


@lru_cache(maxsize=1)
def allowed_paths() -> tuple[str, ...]:
    return DOCUMENT_PATHS + tuple(_paths(RESULT))


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
