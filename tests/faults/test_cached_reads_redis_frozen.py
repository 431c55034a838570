"""Cached reads that go to Redis together (cache/batching.py) while Redis is frozen (SIGSTOP
of the real server): each answers 200 from PostgreSQL within the backend timeout, none a
500 or a hang, and the reads are cached again once Redis is thawed."""

from __future__ import annotations

import asyncio
import time

from httpx import AsyncClient

from tests.faults.fault_helpers import RETRY_S, TIMEOUT_S, OwnBackends
from tests.faults.test_fail_fast import ADMIN, MARGIN_S, register

READERS = 20


async def test_concurrent_cached_reads_with_redis_frozen_answer_from_postgres_in_time(
    own_backends: OwnBackends, fault_client: AsyncClient
) -> None:
    registered = (await register(fault_client)).json()
    path = f"/api/users/{registered['user']['id']}"
    headers = {"Authorization": f"Bearer {registered['token']}"}

    async def reads() -> tuple[list[int], float]:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(fault_client.get(path, headers=headers) for _ in range(READERS))
        )
        return [a.status_code for a in answers], time.monotonic() - started

    assert (await reads())[0] == [200] * READERS  # and cached

    async def hits() -> int:
        stats = await fault_client.get("/cache/stats", headers=ADMIN)
        assert stats.status_code == 200, stats.text
        return int(stats.json()["hits"])

    with own_backends.frozen("redis"):
        during, during_s = await reads()
        assert during == [200] * READERS
        assert during_s < TIMEOUT_S + MARGIN_S
        again, again_s = await reads()  # the breaker is open: Redis is not even tried
        assert again == [200] * READERS
        assert again_s < TIMEOUT_S / 2
    before = await hits()
    deadline = time.monotonic() + RETRY_S + TIMEOUT_S + 5
    while await hits() == before:  # back by itself: reads hit the cache again
        assert time.monotonic() < deadline, "reads never hit the cache after the thaw"
        assert (await reads())[0] == [200] * READERS
        await asyncio.sleep(0.05)
