"""Sign-in attempt limits, counted in Redis (shared by every node), that an attacker cannot
turn against somebody else.

- An address past `per_address` failed attempts in its window is refused (429) until the
  window ends; its attempts are then refused before anything else is counted, so a
  blocked address adds nothing to any account's count.
- An account is never locked. Past `per_account` failures (counted only from addresses
  that were not blocked) an attempt from an address that has not signed in to it before
  must wait an exponentially growing delay since the last counted failure (`base_delay_s`
  doubling, at most `max_delay_s`): guessing slows to a crawl, while the owner, from an
  address that signed in to the account before, is never delayed by someone else's guesses.

Each attempt is counted before its password is checked, in one script, so a burst of
parallel guesses is cut off at the limit rather than after every one of them was tried; a
successful attempt takes its count back, clears the account's failures and remembers the
address for the account (`known_ttl_s`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from azora_nexus.errors import RateLimited

PREFIX = "azora:login"

# KEYS: account (hash: n failures, last ms), address (counter), known (set of address hashes).
# ARGV: now_ms, per_address, address_window_s, per_account, account_window_s, base_delay_ms,
# max_delay_ms, address hash. Answers {0, 0} counted, {1, wait_ms} address blocked,
# {2, wait_ms} the account's delay has not passed.
_ATTEMPT = """
local address_failures = tonumber(redis.call('GET', KEYS[2]) or '0')
if address_failures >= tonumber(ARGV[2]) then
  return {1, redis.call('PTTL', KEYS[2])}
end
local now = tonumber(ARGV[1])
local failures = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local free = tonumber(ARGV[4])
if failures >= free and redis.call('SISMEMBER', KEYS[3], ARGV[8]) == 0 then
  local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
  local delay = math.min(tonumber(ARGV[6]) * 2 ^ (failures - free), tonumber(ARGV[7]))
  local wait = math.ceil(last + delay - now)
  if wait > 0 then return {2, wait} end
end
if redis.call('INCR', KEYS[2]) == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'last', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {0, 0}
"""


REGISTER_PREFIX = "azora:register"


async def count_registration(redis: Redis, address: str, *, limit: int, window_s: int) -> None:
    """Count one registration from `address`; RateLimited (429, with how long to wait) past
    `limit` in the window. Counted before the password is hashed, so a flood costs little."""
    key = f"{REGISTER_PREFIX}:address:{address}"
    async with redis.pipeline(transaction=True) as pipe:
        # SET NX EX starts a window only when none is running; INCR counts within it.
        pipe.set(key, 0, ex=window_s, nx=True)
        pipe.incr(key)
        pipe.pttl(key)
        _, count, ttl_ms = await pipe.execute()
    if int(count) > limit:
        raise RateLimited(
            "too many registrations from this address; try again later",
            retry_after_s=max(int(ttl_ms), 0) / 1000,
        )


@dataclass(frozen=True)
class LoginLimits:
    """How many failed attempts an address may make per window, and after how many an
    account's attempts from unfamiliar addresses are delayed, and how long."""

    per_account: int = 5
    account_window_s: int = 300
    per_address: int = 20
    address_window_s: int = 300
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    known_ttl_s: int = 30 * 86_400


def _digest(text: str) -> str:
    # Hashed: Redis keys should not carry personal data.
    return hashlib.sha256(text.encode()).hexdigest()


def _keys(email: str, address: str) -> tuple[str, str, str]:
    account = _digest(email)
    return (
        f"{PREFIX}:failures:{account}",
        f"{PREFIX}:address:{address}",
        f"{PREFIX}:known:{account}",
    )


@dataclass(frozen=True)
class LoginAttempt:
    """One counted attempt; `succeeded()` takes it back."""

    redis: Redis
    keys: tuple[str, str, str]
    address_hash: str
    known_ttl_s: int

    async def succeeded(self) -> None:
        """A right password: this attempt does not count, the account's failures are
        cleared, and this address is known to the account from now on."""
        account, origin, known = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(account)
            pipe.decr(origin)
            pipe.sadd(known, self.address_hash)
            pipe.expire(known, self.known_ttl_s)
            await pipe.execute()


async def count_attempt(
    redis: Redis, email: str, address: str, limits: LoginLimits
) -> LoginAttempt:
    """Count one attempt; RateLimited (429, with how long to wait) when the address is
    blocked or the account's delay for an unfamiliar address has not passed."""
    keys = _keys(email, address)
    address_hash = _digest(address)
    outcome, wait_ms = await redis.eval(
        _ATTEMPT,
        3,
        *keys,
        int(time.time() * 1000),
        limits.per_address,
        limits.address_window_s,
        limits.per_account,
        limits.account_window_s,
        int(limits.base_delay_s * 1000),
        int(limits.max_delay_s * 1000),
        address_hash,
    )
    if int(outcome) == 1:
        raise RateLimited(
            "too many failed sign-ins from this address; try again later",
            retry_after_s=max(int(wait_ms), 0) / 1000,
        )
    if int(outcome) == 2:
        raise RateLimited(
            "too many failed sign-ins to this account; try again shortly",
            retry_after_s=int(wait_ms) / 1000,
        )
    return LoginAttempt(redis, keys, address_hash, limits.known_ttl_s)
