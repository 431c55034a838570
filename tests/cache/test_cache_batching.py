"""Lookups of one loop turn go to Redis as one pipeline; each caller gets its own answer."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from azora_nexus.cache import Cache, keys, open_cache
from tests.cache.conftest import OPTIONS

COUNT = 20


async def fill(cache: Cache) -> list[keys.CacheKey]:
    made = [keys.key("batch", str(i)) for i in range(COUNT)]
    for i, key in enumerate(made):

        async def load(i: int = i) -> dict[str, int]:
            return {"i": i}

        await cache.read_through_json(key, load)
    return made


async def never() -> dict[str, int]:
    raise AssertionError("a hit must not load")


async def clients(redis: Redis) -> int:
    info = await redis.info("clients")
    return int(info["connected_clients"])


async def test_concurrent_hits_each_get_their_own_value_over_one_connection(
    redis_url: str, redis: Redis
) -> None:
    async with open_cache(redis_url, OPTIONS) as cache:
        made = await fill(cache)
        before = await clients(redis)
        bodies = await asyncio.gather(*(cache.read_through_json(k, never) for k in made))
        opened = await clients(redis) - before

    assert bodies == [b'{"i":%d}' % i for i in range(COUNT)]
    # One at a time, each lookup took a connection of its own from the pool (20 opened).
    assert opened <= 1


async def test_concurrent_hits_after_redis_lost_its_scripts_load_them_again(
    cache: Cache, redis: Redis
) -> None:
    made = await fill(cache)
    await redis.script_flush()

    bodies = await asyncio.gather(*(cache.read_through_json(k, never) for k in made))

    assert bodies == [b'{"i":%d}' % i for i in range(COUNT)]


async def test_a_cancelled_reader_leaves_the_others_their_answers(cache: Cache) -> None:
    made = await fill(cache)
    reads = [asyncio.create_task(cache.read_through_json(k, never)) for k in made]
    await asyncio.sleep(0)  # every read has joined the batch
    reads[3].cancel()

    done = await asyncio.gather(*reads, return_exceptions=True)

    assert isinstance(done[3], asyncio.CancelledError)
    assert [d for i, d in enumerate(done) if i != 3] == [
        b'{"i":%d}' % i for i in range(COUNT) if i != 3
    ]
