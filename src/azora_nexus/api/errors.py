"""The one place that turns errors into HTTP answers: `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging
import math

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from azora_nexus import errors
from azora_nexus.guard import backend_of, describe

logger = logging.getLogger(__name__)

STATUS: dict[type[errors.NexusError], int] = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.HistoryExpired: 410,
    errors.PayloadTooLarge: 413,
    errors.Invalid: 422,
    errors.RateLimited: 429,
    errors.BackendUnavailable: 503,
    errors.Overloaded: 503,
    errors.BackendStartError: 503,
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "backend_unavailable",
}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def status_of(exc: errors.NexusError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


async def on_nexus_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.NexusError)
    response = error_response(status_of(exc), exc.code, exc.message)
    retry_after_s = getattr(exc, "retry_after_s", None)
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return response


async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    unparsable = [err for err in exc.errors() if err.get("type") == "json_invalid"]
    if unparsable:
        # Not JSON at all is a malformed request (400), not a JSON value that fails checks.
        ctx = unparsable[0].get("ctx") or {}
        return error_response(400, "bad_request", f"the body is not JSON: {ctx.get('error', '')}")
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )
    return error_response(422, "invalid", problems or "invalid request")


async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = error_response(
        exc.status_code, HTTP_CODES.get(exc.status_code, "error"), str(exc.detail)
    )
    # Starlette's headers (a 405's `Allow`, a 401's `WWW-Authenticate`) are part of the answer.
    response.headers.update(exc.headers or {})
    return response


async def on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # A bug, not bad input: log it whole, tell the client nothing internal.
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error")


# What a driver raises when its server does not answer (among other things it raises).
DRIVER_ERRORS: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    RedisError,
    PyMongoError,
    OSError,  # TimeoutError and ConnectionError among them
)


async def on_driver_error(request: Request, exc: Exception) -> JSONResponse:
    """A backend that did not answer (a timeout, a lost connection): 503 naming it, and its
    breaker opens so the next requests need not wait. Anything else is a bug: 500."""
    backend = backend_of(exc)
    if backend is None:
        return await on_unexpected_error(request, exc)
    nexus = getattr(request.app.state, "nexus", None)
    guard = None if nexus is None else nexus.guards.all.get(backend)
    if guard is not None and not isinstance(exc, errors.BackendUnavailable):
        guard.failed(exc)
    return error_response(503, "backend_unavailable", f"{backend} did not answer: {describe(exc)}")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error in the contract's shape."""
    app.add_exception_handler(errors.NexusError, on_nexus_error)
    for driver_error in DRIVER_ERRORS:
        app.add_exception_handler(driver_error, on_driver_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected_error)
