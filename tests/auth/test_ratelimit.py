"""Login attempt limits in Redis: per account and per address, failures only."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from azora_nexus.auth.ratelimit import LoginLimits, count_attempt
from azora_nexus.errors import RateLimited

LIMITS = LoginLimits(per_account=2, account_window_s=60, per_address=3, address_window_s=60)


async def test_an_account_is_refused_past_its_failed_attempts(redis: Redis) -> None:
    await count_attempt(redis, "a@example.com", "10.0.0.1", LIMITS)
    await count_attempt(redis, "a@example.com", "10.0.0.2", LIMITS)
    with pytest.raises(RateLimited):
        await count_attempt(redis, "a@example.com", "10.0.0.3", LIMITS)
    # Another account from a fresh address is unaffected.
    await count_attempt(redis, "b@example.com", "10.0.0.4", LIMITS)


async def test_an_address_is_refused_past_its_failed_attempts(redis: Redis) -> None:
    for n in range(3):
        await count_attempt(redis, f"u{n}@example.com", "10.0.0.9", LIMITS)
    with pytest.raises(RateLimited):
        await count_attempt(redis, "new@example.com", "10.0.0.9", LIMITS)


async def test_successes_give_their_attempt_back(redis: Redis) -> None:
    for _ in range(10):
        attempt = await count_attempt(redis, "a@example.com", "10.0.0.1", LIMITS)
        await attempt.succeeded()


async def test_counters_expire_with_their_window_and_hold_no_email(redis: Redis) -> None:
    await count_attempt(redis, "a@example.com", "10.0.0.1", LIMITS)
    found = [key async for key in redis.scan_iter(match="azora:login:*")]
    assert len(found) == 2
    assert all(b"example.com" not in key for key in found)
    ttls = [await redis.ttl(key) for key in found]
    assert all(0 < ttl <= 60 for ttl in ttls)
