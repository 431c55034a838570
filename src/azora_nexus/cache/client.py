"""The Redis connection pool Nexus shares between the cache and the event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def create_redis(
    url: str,
    *,
    timeout_s: float = 2.0,
    connect_timeout_s: float | None = None,
    retries: int | None = None,
    pool_size: int | None = None,
) -> Redis:
    """A client for `url`, RESP2 on purpose (redis-py 8 defaults to RESP3).

    `retries` replaces redis-py's default (10 retries with backoff, seconds per call when
    Redis is down); `retries=0` lets the first failure through at once. `pool_size` bounds
    the connections: a call then waits up to `connect_timeout_s` (default `timeout_s`) for
    a free one instead of failing with "Too many connections" past redis-py's default of 100.
    """
    connect_timeout_s = connect_timeout_s or timeout_s
    options: dict[str, Any] = {
        "protocol": 2,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": connect_timeout_s,
        "health_check_interval": 30,
    }
    if retries is not None:
        options["retry"] = Retry(NoBackoff(), retries)
    if pool_size is None:
        return Redis.from_url(url, **options)
    pool = BlockingConnectionPool.from_url(
        url, max_connections=pool_size, timeout=connect_timeout_s, **options
    )
    return Redis.from_pool(pool)


@asynccontextmanager
async def open_redis(
    url: str, *, timeout_s: float = 2.0, pool_size: int = 256
) -> AsyncIterator[Redis]:
    """A Redis client with a bounded pool (bursts wait for a connection), closed on exit."""
    client = create_redis(url, timeout_s=timeout_s, pool_size=pool_size)
    try:
        yield client
    finally:
        await client.aclose()
