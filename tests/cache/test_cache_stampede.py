"""Stampede guard: 200 readers missing one hot key at once cause one database load."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from azora_nexus.cache import Cache, CacheOptions, open_cache
from tests.cache.cache_helpers import ProbeTable, probe_key

READERS = 200


@pytest.mark.parametrize("nodes", [1, 4])
async def test_200_concurrent_misses_on_one_key_load_it_once(
    nodes: int, redis_url: str, probe: ProbeTable
) -> None:
    """On one node the readers share one flight; across nodes they wait on its lease."""
    probe.fill_delay_s = 0.2  # a slow query: every reader misses while it runs
    async with AsyncExitStack() as stack:
        caches: list[Cache] = [
            await stack.enter_async_context(open_cache(redis_url, CacheOptions(wait_s=5)))
            for _ in range(nodes)
        ]

        values = await asyncio.gather(
            *(
                caches[i % nodes].read_through(probe_key(5), lambda: probe.version(5))
                for i in range(READERS)
            )
        )

    assert values == [1] * READERS
    assert probe.loads == 1
    assert sum(c.stats.loads for c in caches) == 1
    assert sum(c.stats.reads for c in caches) == READERS


async def test_readers_arriving_during_a_load_get_its_value_without_loading(
    cache: Cache, probe: ProbeTable
) -> None:
    """Late readers do not share a load that began before them; they wait for its fill."""
    probe.fill_delay_s = 0.2
    first = asyncio.ensure_future(cache.read_through(probe_key(6), lambda: probe.version(6)))
    await asyncio.sleep(0.05)  # the flight is loading now

    late = await asyncio.gather(
        *(cache.read_through(probe_key(6), lambda: probe.version(6)) for _ in range(50))
    )

    assert (await first, late) == (1, [1] * 50)
    assert probe.loads == 1
    assert cache.stats.misses == 1  # the first reader; the 50 got Redis's value
    assert cache.stats.hits + cache.stats.wait_hits == 50
