"""`GET /health` asks every backend for real."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from azora_nexus.app import create_app
from azora_nexus.backends.mongo import EmbeddedMongo
from azora_nexus.backends.postgres import EmbeddedPostgres
from azora_nexus.backends.process import ChildServer
from azora_nexus.backends.redis import EmbeddedRedis
from azora_nexus.config import Settings
from tests.support.server import reserve_port

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow

OWN_SERVERS: dict[str, type[ChildServer]] = {
    "postgres": EmbeddedPostgres,
    "redis": EmbeddedRedis,
    "mongo": EmbeddedMongo,
}
SETTING = {"postgres": "database_url", "redis": "redis_url", "mongo": "mongodb_uri"}


async def test_health_reports_every_backend_ok(client: AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"postgres", "redis", "mongo"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert check["latencyMs"] >= 0


async def eventually_healthy(http: AsyncClient, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (await http.get("/health")).status_code == 200:
            return True
        await asyncio.sleep(0.2)
    return False


@pytest.mark.parametrize("engine", ["postgres", "redis", "mongo"])
async def test_health_names_a_stopped_backend_with_503_within_3_s_and_recovers(
    engine: str, settings: Settings, own_data_dir: Path
) -> None:
    port = reserve_port()
    server = OWN_SERVERS[engine](own_data_dir / engine, port)
    url = await server.start()
    app = create_app(settings.model_copy(update={SETTING[engine]: url}))
    try:
        async with LifespanManager(app, startup_timeout=30) as manager:
            http = AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://n")
            async with http:
                assert (await http.get("/health")).status_code == 200
                await server.stop()
                started = time.perf_counter()
                response = await http.get("/health")
                elapsed_s = time.perf_counter() - started
                # Back on the same port, the app recovers by itself (and its clients are
                # closed against a live server, leaving no half-open monitor socket).
                server = OWN_SERVERS[engine](own_data_dir / engine, port)
                await server.start()
                assert await eventually_healthy(http, timeout_s=20)
    finally:
        await server.stop()
    assert response.status_code == 503
    assert elapsed_s < 3
    body = response.json()
    assert body["checks"][engine]["ok"] is False
    assert {name for name, check in body["checks"].items() if check["ok"]} == (
        {"postgres", "redis", "mongo"} - {engine}
    )
    assert body["error"]["code"] == "backend_unavailable"
    assert body["error"]["message"].startswith(f"{engine} is down: ")
