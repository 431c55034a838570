"""Pattern invalidation: SCAN (never KEYS) over many pages removes exactly the matches."""

from __future__ import annotations

from redis.asyncio import Redis

from azora_nexus.cache import CacheOptions, codec, keys, open_cache
from azora_nexus.cache.scripts import Fill
from tests.cache.cache_helpers import probe_key


async def test_pattern_invalidation_removes_exactly_the_matching_keys(
    redis: Redis, redis_url: str
) -> None:
    async with open_cache(redis_url, CacheOptions(scan_count=100)) as cache:
        epoch = cache.store.epoch
        assert epoch is not None
        prefix = cache.options.prefix
        matching = [keys.key("user", 1, "item", i) for i in range(1500)]
        others = [
            *(keys.key("user", 10, "item", i) for i in range(1500)),  # user:10:… is not user:1:…
            *(keys.key("course", i) for i in range(1000)),
            keys.user(1),  # the user itself is not under user:1:*
            keys.key("user", "1*"),  # an id with a glob character stays literal
            probe_key(1),
        ]
        async with redis.pipeline(transaction=False) as pipe:
            for i, key in enumerate(matching + others):
                pipe.set(keys.value_key(prefix, epoch, key), codec.encode(i), ex=600)
            await pipe.execute()
        in_flight = keys.key("user", 1, "in-flight")  # a reader loading it right now
        await redis.set(keys.lease_key(prefix, epoch, in_flight), "token-1", ex=600)

        await cache.invalidate_pattern(keys.user_keys(1))

        remaining = {key async for key in redis.scan_iter(match=f"{prefix}:{epoch}:*", count=1000)}
        assert remaining == {keys.value_key(prefix, epoch, k).encode() for k in others}
        assert await cache.store.fill(in_flight, "token-1", codec.encode(1), 60_000) is (
            Fill.REJECTED
        )
        assert cache.stats.pattern_keys_removed == len(matching)


def test_ids_cannot_add_levels_or_globs_to_keys_and_patterns() -> None:
    assert keys.user("a:b*c") == "user:a%3Ab%2Ac"
    assert keys.user_keys("x?") == "user:x%3F:*"
    assert keys.match("az[1]", "e", keys.VALUE, keys.user_keys(1)) == "az\\[1\\]:e:v:user:1:*"
