"""Sign-in limits in Redis: an address is blocked past its failures; an account is never
locked, only delayed for unfamiliar addresses, and blocked addresses add nothing to it.

Issue 15, item 5: this file asserted the old behaviour (an account refused from any
address once anyone, from anywhere, failed past its limit); it now asserts the new one."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from redis.asyncio import Redis

from azora_nexus.auth.ratelimit import LoginLimits, count_attempt
from azora_nexus.errors import RateLimited

LIMITS = LoginLimits(
    per_account=2,
    account_window_s=60,
    per_address=3,
    address_window_s=60,
    base_delay_s=0.2,
    max_delay_s=0.4,
)


async def refused(redis: Redis, email: str, address: str) -> float:
    """The wait a refused attempt is told to take."""
    with pytest.raises(RateLimited) as refusal:
        await count_attempt(redis, email, address, LIMITS)
    assert refusal.value.retry_after_s is not None
    return refusal.value.retry_after_s


async def test_an_account_delays_unfamiliar_addresses_doubling_and_never_locks(
    redis: Redis,
) -> None:
    await count_attempt(redis, "a@example.com", "10.0.0.1", LIMITS)
    await count_attempt(redis, "a@example.com", "10.0.0.2", LIMITS)
    first_wait = await refused(redis, "a@example.com", "10.0.0.3")
    assert 0 < first_wait <= 0.2
    await asyncio.sleep(first_wait + 0.02)
    await count_attempt(redis, "a@example.com", "10.0.0.3", LIMITS)  # waited: counted
    second_wait = await refused(redis, "a@example.com", "10.0.0.4")
    assert 0.2 < second_wait <= 0.4  # doubled, and capped at max_delay_s
    # Another account is unaffected.
    await count_attempt(redis, "b@example.com", "10.0.0.4", LIMITS)


async def test_an_address_that_signed_in_before_is_not_delayed_by_others(redis: Redis) -> None:
    attempt = await count_attempt(redis, "a@example.com", "10.0.0.1", LIMITS)
    await attempt.succeeded()
    for address in ("10.0.0.2", "10.0.0.3"):
        await count_attempt(redis, "a@example.com", address, LIMITS)
    await refused(redis, "a@example.com", "10.0.0.4")
    # The owner's own address still gets to try (and to sign in).
    attempt = await count_attempt(redis, "a@example.com", "10.0.0.1", LIMITS)
    await attempt.succeeded()
    await count_attempt(redis, "a@example.com", "10.0.0.4", LIMITS)  # failures cleared


async def test_an_address_is_refused_past_its_failed_attempts(redis: Redis) -> None:
    for n in range(3):
        await count_attempt(redis, f"u{n}@example.com", "10.0.0.9", LIMITS)
    wait = await refused(redis, "new@example.com", "10.0.0.9")
    assert 0 < wait <= 60


async def test_a_blocked_address_adds_nothing_to_an_account(redis: Redis) -> None:
    for n in range(3):
        await count_attempt(redis, f"u{n}@example.com", "10.0.0.9", LIMITS)
    for _ in range(10):
        await refused(redis, "a@example.com", "10.0.0.9")
    account = f"azora:login:failures:{hashlib.sha256(b'a@example.com').hexdigest()}"
    assert await redis.exists(account) == 0
    # So the account's own allowance is whole: two attempts before any delay.
    await count_attempt(redis, "a@example.com", "10.0.0.8", LIMITS)
    await count_attempt(redis, "a@example.com", "10.0.0.7", LIMITS)


async def test_successes_give_their_attempt_back(redis: Redis) -> None:
    for _ in range(10):
        attempt = await count_attempt(redis, "a@example.com", "10.0.0.1", LIMITS)
        await attempt.succeeded()


async def test_counters_expire_with_their_window_and_hold_no_email(redis: Redis) -> None:
    attempt = await count_attempt(redis, "a@example.com", "10.0.0.1", LIMITS)
    await attempt.succeeded()
    await count_attempt(redis, "a@example.com", "10.0.0.1", LIMITS)
    found = [key async for key in redis.scan_iter(match="azora:login:*")]
    assert len(found) == 3  # failures, address, known addresses
    assert all(b"example.com" not in key for key in found)
    ttls = {key: await redis.ttl(key) for key in found}
    assert all(0 < ttl <= 60 for key, ttl in ttls.items() if b":known:" not in key)
    assert all(0 < ttl <= LIMITS.known_ttl_s for ttl in ttls.values())
