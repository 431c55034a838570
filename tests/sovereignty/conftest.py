"""Fixtures for the data-sovereignty tests: a node over real TCP (HTTP and Socket.IO) and a
user with traces in every domain."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from httpx import AsyncClient

from azora_nexus.app import create_app
from azora_nexus.config import Settings
from tests.sovereignty.life import Life, Node, live_a_life


class Server(uvicorn.Server):
    """uvicorn without its signal handlers (the test runner owns the signals)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@pytest.fixture
async def node(settings: Settings) -> AsyncIterator[Node]:
    """Nexus served on a free port of 127.0.0.1 for this test."""
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=2)
    server = Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.02)
    try:
        port = sock.getsockname()[1]
        yield Node(url=f"http://127.0.0.1:{port}", nexus=app.other_asgi_app.state.nexus)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


@pytest.fixture
async def http(node: Node) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(base_url=node.url, timeout=30) as client:
        yield client


@pytest.fixture
async def life(http: AsyncClient, node: Node) -> Life:
    """Alice with traces in every domain, and Bob, her counterparty."""
    return await live_a_life(http, node.nexus.documents)
