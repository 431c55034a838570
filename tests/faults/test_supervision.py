"""Embedded servers killed for real (kill -9) are restarted on their data dir and port;
`/health` is 503 meanwhile and 200 after; `/metrics` counts the restarts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from asgi_lifespan import LifespanManager
from bench.chaos.signals import kill_hard
from httpx import ASGITransport, AsyncClient

from azora_nexus.app import create_app
from azora_nexus.backends import backend_status
from azora_nexus.config import Settings
from tests.faults.fault_helpers import JWT_SECRET, RETRY_S, TIMEOUT_S


async def wait_for(client: AsyncClient, status: int, within_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if (await client.get("/health")).status_code == status:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"/health never answered {status} within {within_s} s")


async def test_killed_backends_come_back_on_their_port(own_data_dir: Path) -> None:
    settings = Settings(
        AZORA_DATA_DIR=own_data_dir,
        AZORA_JWT_SECRET=JWT_SECRET,
        AZORA_ENV="test",
        AZORA_BACKEND_TIMEOUT_S=TIMEOUT_S,
        AZORA_BACKEND_RETRY_S=RETRY_S,
    )
    app = create_app(settings, migrate=True)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = ASGITransport(app=manager.app)
        async with AsyncClient(transport=transport, base_url="http://nexus") as client:
            assert (await client.get("/health")).status_code == 200
            for name in ("redis", "postgres"):
                before = {s.name: s for s in backend_status(settings)}[name]
                assert before.pid is not None
                kill_hard(before.pid)
                await wait_for(client, 503, 5)
                await wait_for(client, 200, 30)
                after = {s.name: s for s in backend_status(settings)}[name]
                assert after.pid != before.pid
                assert after.url == before.url  # same port: every client reconnects
            metrics = (await client.get("/metrics")).text
            assert 'azora_backend_restarts_total{backend="redis"} 1.0' in metrics
            assert 'azora_backend_restarts_total{backend="postgres"} 1.0' in metrics
            assert 'azora_backend_restarts_total{backend="mongo"} 0.0' in metrics
