"""Nexus served in process over real TCP, exactly as `azora up` serves a node.

The app is `create_app(settings)` and the uvicorn configuration is the CLI's own
(`node_config`: the direct websocket path, no websocket pings, no deflate), so what a test
exercises is what production runs. The listening socket is bound to port 0 and handed to
uvicorn open: no "find a free port, close it, reuse it" race.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import socketio

from azora_nexus.app import create_app
from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.cli.node import node_config
from azora_nexus.config import Settings
from azora_nexus.nexus import Nexus
from azora_nexus.realtime.engine import Server
from azora_nexus.realtime.namespace import Realtime


@dataclass
class Node:
    """A running node: its base URL and its open parts."""

    url: str
    nexus: Nexus
    sio: socketio.AsyncServer
    realtime: Realtime

    def token(self, role: Role, sub: str | None = None) -> str:
        """A valid access token for this node."""
        return issue_token(self.nexus.jwt_secret, sub=sub or role.value, role=role)


_reserved: list[socket.socket] = []


def reserve_port() -> int:
    """A port of 127.0.0.1 for a server that another process starts (`azora up`, an embedded
    server): bound here with SO_REUSEADDR and not listening until the test ends, so no other
    bind to port 0 gets it meanwhile, while that server (which binds with SO_REUSEADDR too,
    as uvicorn, PostgreSQL, Valkey and SecantusDB do) can still take it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    _reserved.append(sock)
    port: int = sock.getsockname()[1]
    return port


def release_reserved_ports() -> None:
    """Let go of every port `reserve_port` holds (after each test)."""
    while _reserved:
        _reserved.pop().close()


def listening_socket() -> socket.socket:
    """A TCP socket bound to a port of 127.0.0.1 the kernel picked, kept open for uvicorn."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serve_app(app: Any, settings: Settings | None = None) -> AsyncIterator[str]:
    """`app` served with a node's uvicorn configuration while the context lasts; its URL."""
    sock = listening_socket()
    server = Server(node_config(app, settings or Settings()))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the server stopped during start-up")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()


@asynccontextmanager
async def serve_node(settings: Settings) -> AsyncIterator[Node]:
    """A Nexus node for `settings` on 127.0.0.1 while the context lasts."""
    app = create_app(settings)
    async with serve_app(app, settings) as url:
        api = app.other_asgi_app
        yield Node(url=url, nexus=api.state.nexus, sio=api.state.sio, realtime=api.state.realtime)
