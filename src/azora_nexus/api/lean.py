"""The lean path: a cached `GET /api/users/{id}` answered beneath FastAPI.

Measured (`python -m bench.http_read --vs-bare --profile`): on a cache hit, FastAPI's
middleware stack, its matching over every route and its dependency injection took more
CPU than the read's own work. This path keeps only what the read needs: the token (HS256
verify, erased users from memory), the cache's lookup script (epoch and leases: no stale
read), the cached bytes as the body, and the request counted in the metrics as HttpMetrics
counts it. Errors are rendered by FastAPI's own exception handlers, so every answer is
the one the FastAPI route gives. A request it does not recognise exactly (another method,
an id not in canonical form, no bearer token, a body) goes on to FastAPI unchanged; the
FastAPI route stays the documented one (OpenAPI) and the fallback.
"""

from __future__ import annotations

import inspect
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from azora_nexus.auth.tokens import read_token
from azora_nexus.domain.privacy.revocation import refuse_erased
from azora_nexus.domain.users import service as users
from azora_nexus.nexus import Nexus

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEX = "[0-9a-f]"
USER_PATH = re.compile(
    rf"/api/users/({_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})"
)
TEMPLATE = "/api/users/{user_id}"  # the FastAPI route's path: one metrics series for both


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of a request without a body, or None to leave it to FastAPI (no or
    another scheme, odd spacing, a body whose size limit FastAPI's stack enforces)."""
    token = None
    seen = False
    for name, value in headers:
        if name in (b"content-length", b"transfer-encoding") and value != b"0":
            return None
        if name == b"authorization" and not seen:
            seen = True
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials and credentials.strip() == credentials:
                token = credentials
    return token


class LeanReads:
    """ASGI app: the lean path for what it recognises, `app` for everything else."""

    def __init__(self, api: FastAPI, app: ASGIApp) -> None:
        self.api = api
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (
            USER_PATH.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET"
            else None
        )
        nexus: Nexus | None = getattr(self.api.state, "nexus", None) if found else None
        token = bearer_token(scope["headers"]) if nexus is not None else None
        if found is None or nexus is None or token is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 200
        try:
            viewer = refuse_erased(nexus.erased, read_token(nexus.jwt_secret, token))
            body = await users.get_user_json(
                nexus.db, nexus.cache, uuid.UUID(found[1]), viewer=viewer
            )
        except Exception as exc:  # rendered as FastAPI renders it, by the same handler
            status = await self.render_error(scope, receive, send, exc)
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % len(body)),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            metrics = nexus.metrics
            metrics.http_requests.labels("GET", TEMPLATE, str(status)).inc()
            metrics.http_latency.labels("GET", TEMPLATE).observe(time.perf_counter() - started)

    async def render_error(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> int:
        """Answer `exc` with the app's handler for it; its status."""
        handlers = self.api.exception_handlers
        handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
        if handler is None:
            raise exc
        answer = handler(Request(scope, receive), exc)
        response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)
        return int(response.status_code)
