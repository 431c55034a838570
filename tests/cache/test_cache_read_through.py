"""Read-through on real Redis: hits, misses, TTL, JSON, soft TTL, leases and epochs."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from azora_nexus.cache import Cache, CacheOptions, codec, keys, open_cache
from azora_nexus.sync import invalidate_after_commit
from tests.cache.cache_helpers import ProbeTable, probe_key


def value_key(cache: Cache, key: keys.CacheKey) -> str:
    assert cache.store.epoch is not None
    return keys.value_key(cache.options.prefix, cache.store.epoch, key)


def lease_key(cache: Cache, key: keys.CacheKey) -> str:
    assert cache.store.epoch is not None
    return keys.lease_key(cache.options.prefix, cache.store.epoch, key)


async def test_a_miss_loads_and_fills_then_a_hit_skips_the_database(
    cache: Cache, probe: ProbeTable
) -> None:
    first = await cache.read_through(probe_key(1), lambda: probe.version(1))
    second = await cache.read_through(probe_key(1), lambda: probe.version(1))

    assert (first, second, probe.loads) == (1, 1, 1)
    assert cache.snapshot() | {"epoch": None} == cache.snapshot() | {
        "hits": 1,
        "misses": 1,
        "loads": 1,
        "fills": 1,
        "hitRate": 0.5,
        "epoch": None,
    }


async def test_a_hit_and_a_miss_return_the_same_json_with_decimals_as_strings(
    cache: Cache,
) -> None:
    async def load() -> dict[str, object]:
        return {"amount": Decimal("10.50"), "tags": ("a", "b"), "n": 3, "none": None}

    miss = await cache.read_through(keys.key("wallet", "w1"), load)
    hit = await cache.read_through(keys.key("wallet", "w1"), load)

    assert miss == hit == {"amount": "10.50", "tags": ["a", "b"], "n": 3, "none": None}


async def test_the_value_expires_after_its_ttl(cache: Cache, redis: Redis) -> None:
    async def load() -> str:
        return "x"

    await cache.read_through(keys.key("short"), load, ttl_s=30)

    ttl_ms = await redis.pttl(value_key(cache, keys.key("short")))
    assert 29_000 < ttl_ms <= 30_000


async def test_a_failing_loader_raises_caches_nothing_and_gives_the_lease_back(
    cache: Cache, redis: Redis
) -> None:
    async def fail() -> int:
        raise LookupError("no such row")

    with pytest.raises(LookupError):
        await cache.read_through(keys.key("missing"), fail)

    assert await redis.exists(value_key(cache, keys.key("missing"))) == 0
    assert await redis.exists(lease_key(cache, keys.key("missing"))) == 0


async def test_a_soft_expired_value_is_served_while_one_reader_refreshes_it(
    cache: Cache, probe: ProbeTable, redis: Redis
) -> None:
    key = probe_key(2)
    assert await cache.read_through(key, lambda: probe.version(2), soft_ttl_s=0.3) == 1
    await probe.bump(2, lambda _: None)  # a write that bypasses the cache: only TTLs see it
    await asyncio.sleep(0.35)

    # The refresh's load waits until all 20 readers are served, so none of them can see the
    # refreshed value merely because the scheduler let the refresh finish first.
    gate = asyncio.Event()

    async def gated_version() -> int:
        await gate.wait()
        return await probe.version(2)

    async with asyncio.timeout(10):  # a reader waiting on the refresh would hang here
        served = await asyncio.gather(
            *(cache.read_through(key, gated_version, soft_ttl_s=0.3) for _ in range(20))
        )
    gate.set()
    for _ in range(500):  # the one background refresh lands
        stored = await redis.get(value_key(cache, key))
        if isinstance(stored, bytes) and codec.decode(stored) == 2:
            break
        await asyncio.sleep(0.01)
    fresh = await cache.read_through(key, lambda: probe.version(2), soft_ttl_s=0.3)

    assert served == [1] * 20
    assert fresh == 2
    assert probe.loads == 2  # the first miss and exactly one refresh
    assert (cache.stats.refreshes, cache.stats.stale_served) == (1, 1)


async def test_a_reader_waits_out_a_dead_holders_lease_then_loads_and_fills(
    cache: Cache, probe: ProbeTable, redis: Redis
) -> None:
    key = probe_key(3)
    await cache.read_through(keys.key("warm-up"), lambda: probe.version(0))
    await redis.set(lease_key(cache, key), "a-crashed-reader", px=60_000)
    loop = asyncio.get_running_loop()

    started = loop.time()
    value = await cache.read_through(key, lambda: probe.version(3))
    waited = loop.time() - started
    again = await cache.read_through(key, lambda: probe.version(3))

    assert (value, again) == (1, 1)
    assert cache.options.wait_s <= waited < cache.options.wait_s + 0.5
    assert cache.stats.wait_timeouts == 1
    assert cache.stats.fills == 2


async def test_a_node_follows_an_epoch_moved_by_another_node(
    cache: Cache, probe: ProbeTable, redis_url: str
) -> None:
    key = probe_key(4)
    await cache.read_through(key, lambda: probe.version(4))
    async with open_cache(redis_url, CacheOptions()) as other:
        await other.read_through(key, lambda: probe.version(4))
        await other.store._move_epoch()  # what a node does when Redis comes back

    value = await cache.read_through(key, lambda: probe.version(4))

    assert value == 1
    assert probe.loads == 2  # the first fill is unreachable in the new epoch
    assert cache.store.epoch == other.store.epoch


async def test_a_json_read_returns_the_stored_bytes_on_a_miss_and_a_hit_alike(
    cache: Cache, redis: Redis
) -> None:
    async def load() -> dict[str, object]:
        return {"amount": Decimal("10.50"), "n": 3, "none": None}

    miss = await cache.read_through_json(keys.key("wallet", "w2"), load)
    hit = await cache.read_through_json(keys.key("wallet", "w2"), load)
    stored = await redis.get(value_key(cache, keys.key("wallet", "w2")))

    assert miss == hit == b'{"amount":"10.50","n":3,"none":null}'
    assert isinstance(stored, bytes)
    assert codec.body(stored) == hit
    assert (cache.stats.hits, cache.stats.misses, cache.stats.fills) == (1, 1, 1)


async def test_a_json_read_after_a_write_returned_sees_that_write(
    cache: Cache, probe: ProbeTable
) -> None:
    key = probe_key(5)
    before = await cache.read_through_json(key, lambda: probe.version(5))
    await probe.bump(5, lambda session: invalidate_after_commit(session, [key], cache=cache))
    after = await cache.read_through_json(key, lambda: probe.version(5))

    assert (before, after, probe.loads) == (b"1", b"2", 2)
