"""The guarantee, proved under contention: once a write has returned, no read that starts
later returns an older version. The naive read-then-SET design fails the same harness.

Readers on two nodes and writers hammer a few hot rows of a real PostgreSQL table, with a
random delay injected between each database read and its cache fill: exactly the window in
which a write can commit and invalidate before a slow reader stores what it read.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from azora_nexus.cache import Cache, CacheOptions, keys, open_cache
from azora_nexus.sync import invalidate_after_commit, read_through, refill_after_commit
from tests.cache.cache_helpers import ProbeTable, probe_key

HOT_ROWS = 3
READERS = 24
WRITERS = 4
SECONDS = 3.0
FILL_DELAY_S = 0.02

ReadFn = Callable[[int, int], Awaitable[int]]  # (reader number, row) -> version
WriteFn = Callable[[int, int], Awaitable[int]]  # (writer number, row) -> committed version


@dataclass
class Observed:
    reads: int = 0
    writes: int = 0
    stale: list[tuple[int, int, int]] = field(default_factory=list)  # (row, got, floor)


async def contend(read: ReadFn, write: WriteFn, seconds: float = SECONDS) -> Observed:
    """Run readers and writers; a read is stale when it returns less than the highest
    version whose write had returned before the read started."""
    returned = [1] * HOT_ROWS  # per row: the newest version whose write has returned
    observed = Observed()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def reader(number: int) -> None:
        while loop.time() < deadline:
            row = random.randrange(HOT_ROWS)
            floor = returned[row]
            got = await read(number, row)
            observed.reads += 1
            if got < floor:
                observed.stale.append((row, got, floor))

    async def writer(number: int) -> None:
        while loop.time() < deadline:
            row = random.randrange(HOT_ROWS)
            version = await write(number, row)
            returned[row] = max(returned[row], version)
            observed.writes += 1
            await asyncio.sleep(random.uniform(0, 0.01))

    await asyncio.gather(*(reader(n) for n in range(READERS)), *(writer(n) for n in range(WRITERS)))
    return observed


def invalidation(how: str, row: int, node: Cache, probe: ProbeTable) -> Callable[[Any], None]:
    """What a writer registers in its transaction: the key, a refill, or a pattern."""
    key = probe_key(row)
    if how == "key":
        return lambda session: invalidate_after_commit(session, [key], cache=node)
    if how == "refill":
        return lambda session: refill_after_commit(
            session, key, lambda: probe.version(row), cache=node
        )
    return lambda session: invalidate_after_commit(
        session, patterns=[keys.pattern("probe")], cache=node
    )


@pytest.mark.parametrize("how", ["key", "refill", "pattern"])
async def test_no_read_is_older_than_a_write_that_returned_before_it(
    how: str, redis_url: str, probe: ProbeTable
) -> None:
    """Writers invalidate their key, or refill it (write-through), or invalidate a pattern."""
    probe.fill_delay_s = FILL_DELAY_S
    async with AsyncExitStack() as stack:
        nodes: list[Cache] = [
            await stack.enter_async_context(open_cache(redis_url, CacheOptions())) for _ in range(2)
        ]

        async def read(number: int, row: int) -> int:
            return await read_through(nodes[number % 2], probe_key(row), lambda: probe.version(row))

        async def write(number: int, row: int) -> int:
            return await probe.bump(row, invalidation(how, row, nodes[number % 2], probe))

        observed = await contend(read, write)

    assert observed.stale == []
    assert observed.reads > 200
    assert observed.writes > 30
    # The race was really run: fills of values read before a write were refused.
    assert sum(n.stats.fills_rejected for n in nodes) > 0
    assert sum(n.stats.hits for n in nodes) > 0
    if how == "refill":
        assert sum(n.stats.refills for n in nodes) == observed.writes


async def test_naive_read_then_set_serves_stale_values_counter_example(
    redis: Redis, probe: ProbeTable
) -> None:
    """COUNTER-EXAMPLE: the seed's design (read the DB, then SET; write, then DEL), run
    through the same harness, does serve values older than a returned write."""
    probe.fill_delay_s = FILL_DELAY_S

    async def read(_: int, row: int) -> int:
        cached = await redis.get(f"naive:{row}")
        if cached is not None:
            return int(cached)
        version = await probe.version(row)  # the injected delay runs before the SET
        await redis.set(f"naive:{row}", version, ex=300)
        return version

    async def write(_: int, row: int) -> int:
        version = await probe.bump(row, lambda session: None)
        await redis.delete(f"naive:{row}")
        return version

    observed = await contend(read, write)

    assert observed.stale, "the naive design was expected to serve a stale value"
