"""Socket.IO tests' client: python-socketio, recording every event it receives.

The node it talks to is served by tests/support/server.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio


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

    async def wait_for_id(self, event_id: str, timeout_s: float = 10.0) -> list[str]:
        """Wait until the event `event_id` has arrived; the ids received so far.

        A negative assertion waits for a sentinel published after the event that must not
        arrive: events reach a socket in stream order, so once the sentinel is here, the
        other would have been too. Never a fixed sleep (it passes on a slow machine).
        """
        async with asyncio.timeout(timeout_s):
            while event_id not in self.ids:
                self.arrived.clear()
                await self.arrived.wait()
        return self.ids


Connect = Callable[..., Awaitable[Client]]


async def connect_client(
    url: str,
    token: str | None,
    *,
    transport: str = "websocket",
    auth: dict[str, Any] | None = None,
) -> Client:
    """A python-socketio client connected to `url`, recording what it receives (with
    `auth`, that is the CONNECT's payload instead of `{token}`)."""
    sio = socketio.AsyncClient(reconnection=False)
    client = Client(sio)

    async def on_any(event: str, data: Any, *_offset: Any) -> None:
        client.names.append(event)
        client.received.append(data)
        client.arrived.set()

    sio.on("*", on_any)
    if auth is None and token is not None:
        auth = {"token": token}
    # "upgrade": polling first, then the upgrade to websocket (the clients' default).
    transports = ["polling", "websocket"] if transport == "upgrade" else [transport]
    await sio.connect(url, auth=auth, transports=transports, wait_timeout=10)
    return client
