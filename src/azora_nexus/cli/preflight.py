"""Before a node serves: PostgreSQL and Redis answer, or the command stops with one line.

A node opens its backends in the app's lifespan, inside uvicorn, which reports a failure
there as a traceback per process (155 lines for one node, 309 for two workers). Asking
both once here, with the node's backend timeout, makes the same failure one line and exit
1. MongoDB is not asked: a node serves without it (history beyond the stream answers 503).
"""

from __future__ import annotations

import asyncio

import asyncpg

from azora_nexus.cache.client import create_redis
from azora_nexus.config import Settings
from azora_nexus.errors import BackendUnavailable
from azora_nexus.events.relay import asyncpg_dsn
from azora_nexus.guard import describe


async def require_backends(settings: Settings) -> None:
    """BackendUnavailable naming the first of PostgreSQL and Redis that does not answer."""
    timeout_s = settings.backend_timeout_s
    if settings.database_url:
        try:
            async with asyncio.timeout(timeout_s):
                conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
                await conn.close()
        except Exception as exc:
            raise BackendUnavailable(f"postgres did not answer: {describe(exc)}") from None
    if not settings.redis_url:
        return
    redis = create_redis(settings.redis_url, timeout_s=timeout_s, retries=0)
    try:
        await redis.ping()
    except Exception as exc:
        raise BackendUnavailable(f"redis did not answer: {describe(exc)}") from None
    finally:
        await redis.aclose()
