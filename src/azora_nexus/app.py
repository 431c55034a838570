"""`create_app(settings)`: FastAPI and Socket.IO on one ASGI app, its lifespan opening Nexus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import socketio
from fastapi import FastAPI

from azora_nexus.api.body_limit import BodyLimits, limit_body
from azora_nexus.api.errors import install_error_handlers
from azora_nexus.api.lean import LeanReads
from azora_nexus.api.lean_transfers import LeanTransfers
from azora_nexus.api.openapi import document_malformed_bodies
from azora_nexus.api.router import router
from azora_nexus.config import Settings
from azora_nexus.metrics import HttpMetrics, NodeMetrics
from azora_nexus.nexus import Nexus, open_nexus
from azora_nexus.realtime.direct import REALTIME_STATE_KEY
from azora_nexus.realtime.namespace import Realtime
from azora_nexus.realtime.server import create_socketio_server


def create_api(settings: Settings, *, migrate: bool = False) -> FastAPI:
    """The HTTP API alone; its lifespan opens every part of Nexus."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_nexus(settings, migrate=migrate) as nexus, AsyncExitStack() as stack:
            app.state.nexus = nexus
            realtime: Realtime | None = getattr(app.state, "realtime", None)
            if realtime is None:
                yield {}
                return
            await stack.enter_async_context(realtime.attached(nexus))
            # The server's state: how sessions opened on a websocket find the node's sockets.
            yield {REALTIME_STATE_KEY: realtime}

    api = FastAPI(
        title="Azora Nexus",
        version="0.1.0",
        lifespan=lifespan,
        summary="The data layer and real-time event hub of the Azora platform",
        # /docs is served from the package (api/routes/docs.py), not from a CDN; no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(api)
    api.add_middleware(HttpMetrics, node_metrics=lambda: _node_metrics(api))
    api.include_router(router)
    document_malformed_bodies(api)
    return api


class NexusApp(socketio.ASGIApp):  # type: ignore[misc]
    """Socket.IO under `/socket.io`, FastAPI for the rest, and every request body capped
    before either of them (or any authentication) sees it."""

    def __init__(self, sio: socketio.AsyncServer, api: FastAPI, limits: BodyLimits) -> None:
        super().__init__(sio, other_asgi_app=api, socketio_path="socket.io")
        self.limits = limits
        # The lean paths of cached reads and transfers first: each hands on whatever it
        # does not answer.
        self.lean = LeanReads(api, LeanTransfers(api, self._limited))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.lean(scope, receive, send)

    async def _limited(self, scope: Any, receive: Any, send: Any) -> None:
        await limit_body(self.limits, super().__call__, scope, receive, send)


def body_limits(settings: Settings) -> BodyLimits:
    """The body limits `settings` asks for: one for `/events`, one for everything else."""
    return BodyLimits(
        max_bytes=settings.max_body_bytes,
        by_path={"/events": settings.max_event_body_bytes},
    )


def _node_metrics(api: FastAPI) -> NodeMetrics | None:
    """The open node's metrics (None before its lifespan opened it: nothing counted)."""
    nexus: Nexus | None = getattr(api.state, "nexus", None)
    return None if nexus is None else nexus.metrics


def create_app(settings: Settings, *, migrate: bool = False, sid_prefix: str = "") -> Any:
    """The ASGI app: Socket.IO under `/socket.io`, everything else to FastAPI.

    `sid_prefix` starts every Engine.IO session id: a worker's `<index>.` (cli/node.py
    starts each worker of `--workers N` with its own).
    """
    api = create_api(settings, migrate=migrate)
    sio = create_socketio_server(settings, sid_prefix=sid_prefix)
    api.state.sio = sio
    api.state.realtime = Realtime(sio, max_sockets_per_user=settings.max_sockets_per_user)
    app = NexusApp(sio, api, body_limits(settings))
    return polls_close_their_connection(app) if sid_prefix else app


def polls_close_their_connection(app: Any) -> Any:
    """A worker's app: a connection that carried a poll is not used again.

    The parent routes a connection by its first request; the client's next poll may name
    the session of another worker, so it must come on a new connection.
    """

    async def closing_polls(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/socket.io"):
            await app(scope, receive, send)
            return

        async def send_closing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_closing)

    return closing_polls
