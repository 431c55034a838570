"""No stale read across a Redis crash or freeze and a restart of Nexus: read, kill Redis
(or freeze it), write, restart Nexus, read -> the new value. Real servers: kill -9 and
SIGSTOP of the real Redis, which comes back from its AOF holding the old entry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asgi_lifespan import LifespanManager
from bench.chaos.signals import kill_hard
from httpx import ASGITransport, AsyncClient

from azora_nexus.app import create_app
from azora_nexus.cache.client import create_redis
from tests.faults.fault_helpers import OwnBackends
from tests.faults.test_fail_fast import register


@asynccontextmanager
async def nexus_node(own_backends: OwnBackends) -> AsyncIterator[AsyncClient]:
    """One Nexus node in process: leaving the block is stopping it."""
    app = create_app(own_backends.settings())
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = ASGITransport(app=manager.app)
        async with AsyncClient(transport=transport, base_url="http://nexus") as http:
            yield http


async def bio_of(client: AsyncClient, user_id: str, headers: dict[str, str]) -> Any:
    response = await client.get(f"/api/users/{user_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["profile"]["bio"]


async def set_bio(client: AsyncClient, user_id: str, headers: dict[str, str], bio: str) -> None:
    response = await client.patch(
        f"/api/users/{user_id}/profile", headers=headers, json={"bio": bio}
    )
    assert response.status_code == 200, response.text


async def cached_values(own_backends: OwnBackends) -> int:
    """How many cache values Redis holds now, under any epoch."""
    raw = create_redis(own_backends.urls["redis"])
    try:
        return len([k async for k in raw.scan_iter(match="azora:cache:*:v:*")])
    finally:
        await raw.aclose()


async def test_read_kill_redis_write_restart_nexus_read_is_new(own_backends: OwnBackends) -> None:
    async with nexus_node(own_backends) as first:
        registered = (await register(first)).json()
        user_id, headers = (
            registered["user"]["id"],
            {"Authorization": f"Bearer {registered['token']}"},
        )
        await set_bio(first, user_id, headers, "old")
        assert await bio_of(first, user_id, headers) == "old"
        assert await bio_of(first, user_id, headers) == "old"  # a hit
        await asyncio.sleep(1.2)  # appendfsync everysec: the entry is in the AOF
        kill_hard(own_backends.pid("redis"))
        await set_bio(first, user_id, headers, "new")  # its invalidation cannot reach Redis
    await own_backends.servers["redis"].restart()  # from its AOF: the old entry is back
    assert await cached_values(own_backends) >= 1
    async with nexus_node(own_backends) as second:
        assert await bio_of(second, user_id, headers) == "new"
        assert await bio_of(second, user_id, headers) == "new"


async def test_read_freeze_redis_write_restart_nexus_read_is_new(
    own_backends: OwnBackends,
) -> None:
    async with nexus_node(own_backends) as first:
        registered = (await register(first)).json()
        user_id, headers = (
            registered["user"]["id"],
            {"Authorization": f"Bearer {registered['token']}"},
        )
        await set_bio(first, user_id, headers, "old")
        assert await bio_of(first, user_id, headers) == "old"
        with own_backends.frozen("redis"):
            await set_bio(first, user_id, headers, "new")  # the invalidation times out
        # Redis answers again and still holds the old entry: this node reads the new value.
        assert await bio_of(first, user_id, headers) == "new"
    async with nexus_node(own_backends) as second:
        assert await bio_of(second, user_id, headers) == "new"
