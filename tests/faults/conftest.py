"""Backends of this folder's own, to freeze (SIGSTOP) and kill (SIGKILL) for real.

The session's shared servers stay untouched: every test here runs against embedded
servers started for the module, under a temporary data dir.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from bench.chaos.signals import thaw
from httpx import ASGITransport, AsyncClient

from azora_nexus.app import create_app
from azora_nexus.backends.launcher import embedded_servers
from azora_nexus.config import Settings
from azora_nexus.database.migrate import upgrade
from tests.faults.fault_helpers import OwnBackends


@pytest.fixture(scope="module")
async def own_backends(session_data_dir: Path) -> AsyncIterator[OwnBackends]:
    data_dir = session_data_dir / f"faults-{os.getpid()}-{id(object())}"
    data_dir.mkdir()
    servers = embedded_servers(Settings(AZORA_DATA_DIR=data_dir))
    try:
        for server in servers.values():
            await server.start()
        await upgrade(servers["postgres"].url)
        yield OwnBackends(data_dir, servers)
    finally:
        for server in servers.values():
            pid = server.pid
            if pid is not None:  # never leave one frozen
                thaw(pid)
            await server.stop()


@pytest.fixture
async def fault_client(own_backends: OwnBackends) -> AsyncIterator[AsyncClient]:
    """The whole app in process on the module's own backends."""
    app = create_app(own_backends.settings())
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = ASGITransport(app=manager.app)
        async with AsyncClient(transport=transport, base_url="http://nexus") as http:
            http.app = manager.app  # type: ignore[attr-defined]
            yield http
