"""For the bench's tests: an ASGI app, or Nexus, served over TCP on 127.0.0.1.

Not a conftest.py: mypy sees every conftest.py of tests/ as one module named `conftest`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from bench.fanout.server import NexusUnderTest

from azora_nexus.app import create_app
from azora_nexus.cli.node import Server
from azora_nexus.config import Settings


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on a free port of 127.0.0.1; yields its base URL until closed."""
    sock = listening_socket()
    server = Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


@asynccontextmanager
async def serve_nexus(settings: Settings) -> AsyncIterator[NexusUnderTest]:
    """Nexus on a free port, as the bench sees a server (no pid: its usage is not measured)."""
    assert settings.jwt_secret is not None
    async with serve_app(create_app(settings)) as url:
        yield NexusUnderTest(url=url, secret=settings.jwt_secret, pid=None)
