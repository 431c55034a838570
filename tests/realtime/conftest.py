"""Fixtures for Socket.IO tests: a real node on 127.0.0.1 and clients that connect to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from azora_nexus.config import Settings
from tests.realtime.js_client import StartJs, js_clients
from tests.realtime.socket_client import Client, Connect, connect_client
from tests.support.server import Node, serve_node


@pytest.fixture
async def node(settings: Settings) -> AsyncIterator[Node]:
    """Nexus served over real TCP on a free port for this test."""
    async with serve_node(settings) as running:
        yield running


@pytest.fixture
async def js() -> AsyncIterator[StartJs]:
    """`await js(url, token, transport, reconnect=False)`: a Node socket.io-client (with
    `reconnect`, one that reconnects by itself), killed after the test."""
    async with js_clients() as start:
        yield start


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """`await connect(url, token)`: a connected client, disconnected after the test."""
    clients: list[Client] = []

    async def create(
        url: str,
        token: str | None,
        *,
        transport: str = "websocket",
        auth: dict[str, Any] | None = None,
    ) -> Client:
        client = await connect_client(url, token, transport=transport, auth=auth)
        clients.append(client)
        return client

    yield create
    for client in clients:
        if client.sio.connected:
            await client.sio.disconnect()
