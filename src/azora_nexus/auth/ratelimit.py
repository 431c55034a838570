"""Login attempt limits, per account and per address, counted in Redis (shared by every node).

Each attempt is counted before its password is checked, so a burst of parallel guesses is
cut off at the limit rather than after every one of them has been tried; a successful
attempt is taken back off the counts, so only failures use up the allowance.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis

from azora_nexus.errors import RateLimited

PREFIX = "azora:login"


@dataclass(frozen=True)
class LoginLimits:
    """How many failed attempts each key may make within its window."""

    per_account: int = 5
    account_window_s: int = 300
    per_address: int = 20
    address_window_s: int = 300


def _account_key(email: str) -> str:
    # Hashed: Redis keys should not carry personal data.
    return f"{PREFIX}:account:{hashlib.sha256(email.encode()).hexdigest()}"


def _address_key(address: str) -> str:
    return f"{PREFIX}:address:{address}"


@dataclass(frozen=True)
class LoginAttempt:
    """One counted attempt; `succeeded()` takes it back."""

    redis: Redis
    keys: tuple[str, str]

    async def succeeded(self) -> None:
        """A right password: this attempt does not count against the account or address."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys[0])
            pipe.decr(self.keys[1])
            await pipe.execute()


async def count_attempt(
    redis: Redis, email: str, address: str, limits: LoginLimits
) -> LoginAttempt:
    """Count one attempt; RateLimited (429) when the account or the address is over its limit."""
    account, origin = _account_key(email), _address_key(address)
    async with redis.pipeline(transaction=True) as pipe:
        # SET NX EX starts a window only when none is running; INCR counts within it.
        pipe.set(account, 0, ex=limits.account_window_s, nx=True)
        pipe.incr(account)
        pipe.set(origin, 0, ex=limits.address_window_s, nx=True)
        pipe.incr(origin)
        _, account_count, _, address_count = await pipe.execute()
    if int(account_count) > limits.per_account or int(address_count) > limits.per_address:
        raise RateLimited("too many login attempts; try again later")
    return LoginAttempt(redis, (account, origin))
