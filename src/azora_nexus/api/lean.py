"""The lean path: a cached `GET /api/users/{id}` answered beneath FastAPI.

Measured (`python -m bench.http_read --vs-bare --profile`): on a cache hit, FastAPI's
middleware stack, its matching over every route and its dependency injection took more
CPU than the read's own work. This path keeps only what the read needs: the token
(deps.authenticate), the cache's lookup script (epoch and leases: no stale read),
the cached bytes as the body, and the request counted in the metrics as HttpMetrics
counts it. Errors are rendered by FastAPI's own exception handlers, so every answer is
the one the FastAPI route gives. A request it does not recognise exactly (another method,
an id not in canonical form, no bearer token, a body) goes on to FastAPI unchanged; the
FastAPI route stays the documented one (OpenAPI) and the fallback.
"""

from __future__ import annotations

import re
import time
import uuid

from azora_nexus.api.deps import authenticate
from azora_nexus.api.lean_base import (
    LeanRoute,
    Receive,
    Scope,
    Send,
    bearer_credentials,
    send_json,
)
from azora_nexus.domain.users import service as users

_HEX = "[0-9a-f]"
USER_PATH = re.compile(
    rf"/api/users/({_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})"
)


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of a request without a body, or None to leave it to FastAPI (no,
    several or another scheme, a body whose size limit FastAPI's stack enforces)."""
    token = None
    seen = False
    for name, value in headers:
        if name in (b"content-length", b"transfer-encoding") and value != b"0":
            return None
        if name == b"authorization":
            if seen:
                return None
            seen = True
            token = bearer_credentials(value)
    return token


class LeanReads(LeanRoute):
    """ASGI app: the lean path for what it recognises, `app` for everything else."""

    method = "GET"
    template = "/api/users/{user_id}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = (
            USER_PATH.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "GET"
            else None
        )
        nexus = self.nexus() if found else None
        token = bearer_token(scope["headers"]) if nexus is not None else None
        if found is None or nexus is None or token is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 200
        try:
            viewer = authenticate(nexus, token)
            body = await users.get_user_json(
                nexus.db, nexus.cache, uuid.UUID(found[1]), viewer=viewer
            )
        except Exception as exc:  # rendered as FastAPI renders it, by the same handler
            status = await self.render_error(scope, receive, send, exc)
        else:
            await send_json(send, 200, body)
        finally:
            self.count(nexus, status, started)
