"""Validate a real response against the schema our OpenAPI document declares for it."""
from __future__ import annotations

import jsonschema

from app.http.openapi import openapi_document


def response_schema(path: str, method: str, status: int) -> dict:
    operation = openapi_document()["paths"][path][method.lower()]
    response = operation["responses"][str(status)]
    [media] = response["content"].values()
    return media["schema"]


def validate_response(path: str, method: str, status: int, body) -> None:
    document = openapi_document()
    schema = {**response_schema(path, method, status), "components": document["components"]}
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(body)
