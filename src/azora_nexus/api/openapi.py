"""What the OpenAPI document says beyond what each route declares itself."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from azora_nexus.api.responses import DESCRIPTIONS, ErrorBody

MALFORMED = "400"
# CONTRACT.md gives POST /events a 422 for any bad body, a body that is not JSON included.
UNPARSABLE_IS_422 = {("/events", "post")}
_REF = "#/components/schemas/{model}"


def _error_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A `$ref` to ErrorBody, adding it (and what it refers to) to the components if absent."""
    body = ErrorBody.model_json_schema(ref_template=_REF)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in body.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault("ErrorBody", body)
    return {"$ref": _REF.format(model="ErrorBody")}


def document_malformed_bodies(api: FastAPI) -> None:
    """Every operation that takes a body documents the 400 an unparsable body gets
    (api/errors.py), in the error shape."""
    build = api.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # built once and cached by FastAPI: this edits the cached document
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if "requestBody" not in operation or (path, method) in UNPARSABLE_IS_422:
                    continue
                operation["responses"][MALFORMED] = {
                    "description": DESCRIPTIONS[400] + ": the body is not JSON",
                    "content": {"application/json": {"schema": _error_schema(schema)}},
                }
        return schema

    api.openapi = openapi  # type: ignore[method-assign]
