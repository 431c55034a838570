"""The Redis connection pool Nexus shares between the cache and the event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis


def create_redis(url: str, *, timeout_s: float = 2.0) -> Redis:
    """A client for `url`, RESP2 on purpose (redis-py 8 defaults to RESP3)."""
    return Redis.from_url(
        url,
        protocol=2,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
    )


@asynccontextmanager
async def open_redis(url: str, *, timeout_s: float = 2.0) -> AsyncIterator[Redis]:
    """A Redis client closed on exit."""
    client = create_redis(url, timeout_s=timeout_s)
    try:
        yield client
    finally:
        await client.aclose()
