"""invalidate_after_commit: keys go when the transaction commits, before the writer
resumes; nothing goes on a rollback; a fill in flight across the write is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.cache import Cache, CacheOptions, codec, keys, open_cache
from azora_nexus.database.engine import Database, open_database
from azora_nexus.nexus import Nexus
from azora_nexus.sync import (
    invalidate_after_commit,
    read_through,
    refill_after_commit,
)

KEY = keys.key("row", 1)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with open_database(database_url) as opened:
        async with opened.transaction() as session:
            await session.execute(text("CREATE TABLE row (id int PRIMARY KEY, version int)"))
            await session.execute(text("INSERT INTO row VALUES (1, 1)"))
        yield opened


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[Cache]:
    async with open_cache(redis_url, CacheOptions()) as opened:
        yield opened


async def version(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(text("SELECT version FROM row WHERE id = 1")))


async def bump(session: AsyncSession) -> None:
    await session.execute(text("UPDATE row SET version = version + 1 WHERE id = 1"))


async def cached(cache: Cache, redis: Redis) -> bytes | None:
    assert cache.store.epoch is not None
    stored = await redis.get(keys.value_key(cache.options.prefix, cache.store.epoch, KEY))
    assert stored is None or isinstance(stored, bytes)
    return stored


async def test_a_commit_invalidates_before_the_transaction_block_returns(
    db: Database, cache: Cache, redis: Redis
) -> None:
    assert await read_through(cache, KEY, lambda: version(db)) == 1
    assert await cached(cache, redis) is not None

    async with db.transaction() as session:
        await bump(session)
        invalidate_after_commit(session, [KEY], cache=cache)
        assert await cached(cache, redis) is not None  # not before the commit

    assert await cached(cache, redis) is None
    assert await read_through(cache, KEY, lambda: version(db)) == 2


async def test_an_explicit_commit_invalidates_too(db: Database, cache: Cache, redis: Redis) -> None:
    await read_through(cache, KEY, lambda: version(db))

    async with db.sessions() as session:
        await bump(session)
        invalidate_after_commit(session, [KEY], cache=cache)
        await session.commit()
        assert await cached(cache, redis) is None


async def test_a_rollback_invalidates_nothing(db: Database, cache: Cache, redis: Redis) -> None:
    await read_through(cache, KEY, lambda: version(db))

    async def write_then_fail() -> None:
        async with db.transaction() as session:
            await bump(session)
            invalidate_after_commit(session, [KEY], cache=cache)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await write_then_fail()
    async with db.transaction() as session:  # the same factory, a later commit: still nothing
        await session.execute(text("SELECT 1"))

    assert await cached(cache, redis) is not None
    assert cache.stats.invalidations == 0


async def test_keys_of_a_rolled_back_savepoint_still_go_with_the_outer_commit(
    db: Database, cache: Cache, redis: Redis
) -> None:
    await read_through(cache, KEY, lambda: version(db))

    async with db.transaction() as session:
        invalidate_after_commit(session, [KEY], cache=cache)
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                raise RuntimeError("inner")
        await bump(session)

    assert await cached(cache, redis) is None


async def test_a_fill_in_flight_across_a_write_is_refused(
    db: Database, cache: Cache, redis: Redis
) -> None:
    read_done = asyncio.Event()
    release = asyncio.Event()

    async def slow_load() -> int:
        found = await version(db)
        read_done.set()
        await release.wait()  # the write commits and returns meanwhile
        return found

    reader = asyncio.ensure_future(read_through(cache, KEY, slow_load))
    await read_done.wait()
    async with db.transaction() as session:
        await bump(session)
        invalidate_after_commit(session, [KEY], cache=cache)
    release.set()

    assert await reader == 1  # it began before the write: the old version is its answer
    assert await cached(cache, redis) is None  # but it could not store it
    assert cache.stats.fills_rejected == 1
    assert await read_through(cache, KEY, lambda: version(db)) == 2


async def test_refill_after_commit_replaces_the_value_before_the_write_returns(
    db: Database, cache: Cache, redis: Redis
) -> None:
    await read_through(cache, KEY, lambda: version(db))

    async with db.transaction() as session:
        await bump(session)
        refill_after_commit(session, KEY, lambda: version(db), cache=cache)
    stored = await cached(cache, redis)

    assert stored is not None
    assert codec.decode(stored) == 2
    assert await read_through(cache, KEY, lambda: version(db)) == 2
    assert (cache.stats.hits, cache.stats.misses, cache.stats.refills) == (1, 1, 1)


async def test_readers_during_a_refill_read_the_previous_value_and_never_miss(
    db: Database, cache: Cache
) -> None:
    refilling, finish = asyncio.Event(), asyncio.Event()

    async def slow_version() -> int:
        found = await version(db)
        refilling.set()
        await finish.wait()
        return found

    await read_through(cache, KEY, lambda: version(db))

    async def write() -> None:
        async with db.transaction() as session:
            await bump(session)
            refill_after_commit(session, KEY, slow_version, cache=cache)

    writer = asyncio.ensure_future(write())
    await refilling.wait()  # committed; the writer has not returned
    during = await asyncio.gather(*(read_through(cache, KEY, slow_version) for _ in range(20)))
    finish.set()
    await writer
    after = await read_through(cache, KEY, lambda: version(db))

    assert (during, after) == ([1] * 20, 2)
    assert (cache.stats.hits, cache.stats.misses) == (21, 1)


async def test_a_failed_refill_leaves_the_key_invalidated(
    db: Database, cache: Cache, redis: Redis
) -> None:
    async def broken() -> int:
        raise LookupError("the refill's query failed")

    await read_through(cache, KEY, lambda: version(db))
    async with db.transaction() as session:
        await bump(session)
        refill_after_commit(session, KEY, broken, cache=cache)

    assert await cached(cache, redis) is None
    assert await read_through(cache, KEY, lambda: version(db)) == 2


async def test_sessions_of_an_open_nexus_invalidate_through_its_cache(nexus: Nexus) -> None:
    async with nexus.db.transaction() as session:
        await session.execute(text("CREATE TABLE row (id int PRIMARY KEY, version int)"))
        await session.execute(text("INSERT INTO row VALUES (1, 1)"))
    await read_through(nexus.cache, KEY, lambda: version(nexus.db))

    async with nexus.db.transaction() as session:
        await bump(session)
        invalidate_after_commit(session, [KEY], patterns=[keys.pattern("row")])

    assert await read_through(nexus.cache, KEY, lambda: version(nexus.db)) == 2
    assert nexus.cache.stats.invalidations == 1
    assert nexus.cache.stats.pattern_invalidations == 1


async def test_outside_a_transaction_it_is_refused(db: Database, cache: Cache) -> None:
    async with db.sessions() as session:
        with pytest.raises(RuntimeError, match="transaction"):
            invalidate_after_commit(session, [KEY], cache=cache)


async def test_a_released_savepoint_does_not_invalidate_before_the_outer_commit(
    db: Database, cache: Cache, redis: Redis
) -> None:
    await read_through(cache, KEY, lambda: version(db))

    async with db.transaction() as session:
        await bump(session)
        invalidate_after_commit(session, [KEY], cache=cache)
        async with session.begin_nested():
            await session.execute(text("SELECT 1"))
        assert await cached(cache, redis) is not None  # the outer transaction is still open

    assert await cached(cache, redis) is None


async def test_a_writer_cancelled_after_its_commit_still_finishes_its_refill(
    db: Database, cache: Cache, redis: Redis
) -> None:
    refilling, finish = asyncio.Event(), asyncio.Event()

    async def slow_version() -> int:
        found = await version(db)
        refilling.set()
        await finish.wait()
        return found

    await read_through(cache, KEY, lambda: version(db))

    async def write() -> None:
        async with db.transaction() as session:
            await bump(session)
            refill_after_commit(session, KEY, slow_version, cache=cache)

    writer = asyncio.ensure_future(write())
    await refilling.wait()
    writer.cancel()  # e.g. the HTTP client went away: the commit is done all the same
    with pytest.raises(asyncio.CancelledError):
        await writer
    finish.set()
    for _ in range(200):
        stored = await cached(cache, redis)
        if stored is not None and codec.decode(stored) == 2:
            break
        await asyncio.sleep(0.01)

    assert await read_through(cache, KEY, lambda: version(db)) == 2
    assert cache.stats.fills == 2


async def test_during_a_refill_the_old_value_lives_no_longer_than_the_writers_lease(
    db: Database, cache: Cache, redis: Redis
) -> None:
    """If the writer died before swapping the value, the old one would expire in seconds."""
    refilling, finish = asyncio.Event(), asyncio.Event()

    async def slow_version() -> int:
        found = await version(db)
        refilling.set()
        await finish.wait()
        return found

    await read_through(cache, KEY, lambda: version(db))

    async def write() -> None:
        async with db.transaction() as session:
            await bump(session)
            refill_after_commit(session, KEY, slow_version, cache=cache)

    writer = asyncio.ensure_future(write())
    await refilling.wait()
    assert cache.store.epoch is not None
    ttl_ms = await redis.pttl(keys.value_key(cache.options.prefix, cache.store.epoch, KEY))
    finish.set()
    await writer

    assert 0 < ttl_ms <= cache.options.lease_ttl_s * 1000
