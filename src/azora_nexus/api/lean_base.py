"""What the lean paths beneath FastAPI share (api/lean.py, api/lean_transfers.py).

One way each: the bearer token taken from a header (the caller it names is
`deps.authenticate`'s, as for FastAPI's routes), an error answered by FastAPI's own
handler for it, a JSON answer, and the request counted in the metrics under the FastAPI
route's template (one series for both paths).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from azora_nexus.nexus import Nexus

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def bearer_credentials(value: bytes) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, else None (no or another
    scheme, odd spacing: FastAPI's to answer)."""
    scheme, _, credentials = value.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not credentials or credentials.strip() != credentials:
        return None
    return credentials


class LeanRoute:
    """An ASGI app answering one route's happy path beneath FastAPI (`api`), everything
    else passed on to `app`."""

    method: str
    template: str  # the FastAPI route's path, as the metrics name it

    def __init__(self, api: FastAPI, app: ASGIApp) -> None:
        self.api = api
        self.app = app

    def nexus(self) -> Nexus | None:
        """The running node (None before start-up: FastAPI answers then)."""
        nexus: Nexus | None = getattr(self.api.state, "nexus", None)
        return nexus

    async def render_error(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> int:
        """Answer `exc` with the app's handler for it, as the FastAPI route would; its
        status. An exception no handler takes is raised (a 500, as on the FastAPI route)."""
        handlers = self.api.exception_handlers
        handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
        if handler is None:
            raise exc
        answer = handler(Request(scope, receive), exc)
        response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)
        return int(response.status_code)

    def count(self, nexus: Nexus, status: int, started: float) -> None:
        """The request in the metrics, as HttpMetrics counts the FastAPI route's."""
        metrics = nexus.metrics
        metrics.http_requests.labels(self.method, self.template, str(status)).inc()
        metrics.http_latency.labels(self.method, self.template).observe(
            time.perf_counter() - started
        )


async def send_json(send: Send, status: int, body: bytes) -> None:
    """`body` (JSON already) as the whole answer."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
