"""Refusing the tokens of erased users: a Redis set of their hashed ids.

Tokens are stateless JWTs that outlive an erasure, so every node checks this set when a
request or a socket presents one: one SISMEMBER, no database round trip. The set holds
`sha256(user id)` (never the id, which must appear nowhere after erasure); it grows by one
64-character member per erased user and is never trimmed, since other services may mint
tokens for any subject at any time.

When Redis does not answer in time, the check lets the token through (and logs it): an
erased user's id names no row and no event any more, so such a token reaches nothing of
theirs, and an outage of the cache must not take every signed-in route down with it.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from azora_nexus.auth.tokens import Principal
from azora_nexus.domain.privacy.identity import subject_hash
from azora_nexus.errors import Unauthorized

logger = logging.getLogger(__name__)

ERASED_KEY = "azora:erased"
CHECK_TIMEOUT_S = 0.25


async def mark_erased(redis: Redis, user_id: object) -> None:
    """From now on, tokens naming `user_id` are refused on every node."""
    await redis.sadd(ERASED_KEY, subject_hash(user_id))


async def unmark_erased(redis: Redis, user_id: object) -> None:
    """Undo `mark_erased` (the erasure it announced did not commit)."""
    await redis.srem(ERASED_KEY, subject_hash(user_id))


async def is_erased(redis: Redis, user_id: object) -> bool:
    """Whether `user_id` was erased; False (logged) when Redis does not answer in time."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            found = await redis.sismember(ERASED_KEY, subject_hash(user_id))
    except (RedisError, TimeoutError) as exc:
        logger.warning("erased-user check skipped: redis did not answer (%s)", exc)
        return False
    return bool(found)


async def refuse_erased(redis: Redis, principal: Principal) -> Principal:
    """`principal`, unless its subject was erased: Unauthorized (401) then."""
    if await is_erased(redis, principal.user_id):
        raise Unauthorized("this account was erased")
    return principal
