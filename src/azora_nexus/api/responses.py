"""The error answers a route documents in OpenAPI, in the one shape api/errors.py renders."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

DESCRIPTIONS = {
    400: "malformed request",
    401: "missing or invalid token",
    403: "the caller may not do this",
    404: "no such object",
    409: "conflicts with the current state",
    413: "body too large",
    422: "invalid input",
    429: "too many attempts",
    503: "a backend is unavailable, or this node is too busy (see Retry-After)",
}


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """`{"error": {"code", "message"}}`, the body of every refusal."""

    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these refusals (401 and 422 are added: every /api route has them)."""
    return {
        status: {"model": ErrorBody, "description": DESCRIPTIONS[status]}
        for status in sorted({401, 422, *statuses})
    }
