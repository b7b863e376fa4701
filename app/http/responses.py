"""JSON responses, serialised once with the C encoder (no key sorting: order is the document's)."""
from __future__ import annotations

import json

from flask import Response

JSON_TYPE = "application/json"


def json_response(payload, status: int = 200, content_type: str = JSON_TYPE, headers=None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, content_type=f"{content_type}; charset=utf-8"
                    if "charset" not in content_type else content_type, headers=headers)


def error_payload(error) -> dict:
    return {"error": error.to_dict()}
