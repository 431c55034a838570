"""Helpers for Socket.IO tests: a node served over TCP and a recording client."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import socketio
import uvicorn

from azora_nexus.app import create_app
from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.cli.node import node_config
from azora_nexus.config import Settings
from azora_nexus.nexus import Nexus
from azora_nexus.realtime.namespace import Realtime


@dataclass
class Node:
    """A running node: its base URL and its open Nexus."""

    url: str
    nexus: Nexus
    sio: socketio.AsyncServer
    realtime: Realtime

    def token(self, role: Role, sub: str | None = None) -> str:
        """A valid access token for this node."""
        return issue_token(self.nexus.jwt_secret, sub=sub or role.value, role=role)


class Server(uvicorn.Server):
    """uvicorn without its signal handlers (the test runner owns the signals)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[Node]:
    """Nexus served over real TCP on a free port of 127.0.0.1 while the context lasts."""
    app = create_app(settings)
    sock = free_socket()
    port = sock.getsockname()[1]
    server = Server(node_config(app, settings))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.02)
    try:
        api = app.other_asgi_app
        yield Node(
            url=f"http://127.0.0.1:{port}",
            nexus=api.state.nexus,
            sio=api.state.sio,
            realtime=api.state.realtime,
        )
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


@dataclass(eq=False)
class Client:
    """A python-socketio client that records every event it receives, in order."""

    sio: socketio.AsyncClient
    received: list[dict[str, Any]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ids(self) -> list[str]:
        return [e["id"] for e in self.received]

    async def subscribe(self, types: list[str], after: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"types": types}
        if after is not None:
            body["after"] = after
        ack: dict[str, Any] = await self.sio.call("subscribe", body, timeout=10)
        return ack

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least `count` events have arrived; all received so far."""
        async with asyncio.timeout(timeout_s):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


Connect = Callable[..., Awaitable[Client]]


async def connect_client(url: str, token: str | None, *, transport: str = "websocket") -> Client:
    """A python-socketio client connected to `url`, recording what it receives."""
    sio = socketio.AsyncClient(reconnection=False)
    client = Client(sio)

    async def on_any(event: str, data: Any) -> None:
        client.names.append(event)
        client.received.append(data)
        client.arrived.set()

    sio.on("*", on_any)
    auth = None if token is None else {"token": token}
    # "upgrade": polling first, then the upgrade to websocket (the clients' default).
    transports = ["polling", "websocket"] if transport == "upgrade" else [transport]
    await sio.connect(url, auth=auth, transports=transports, wait_timeout=10)
    return client
