"""The Redis connection pool Nexus shares between the cache and the event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from azora_nexus.guard import Guard, reported


class GuardedPool(BlockingConnectionPool):
    """Refuses at once while the guard's breaker is open; a failed connect opens it."""

    guard: Guard

    async def get_connection(self, *args: Any, **options: Any) -> Any:
        self.guard.check()
        with reported(self.guard):
            return await super().get_connection(*args, **options)  # type: ignore[no-untyped-call]


def _blocking(args: tuple[Any, ...]) -> bool:
    return any(isinstance(a, str | bytes) and a in ("BLOCK", b"BLOCK") for a in args)


class GuardedPipeline(Pipeline):
    guard: Guard

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        async with self.guard.guarded():
            return await super().execute(raise_on_error)


class GuardedRedis(Redis):
    """A client whose commands report timeouts and lost connections to the guard, and
    take at most the guard's timeout in all (connecting included; a blocking read such as
    XREAD BLOCK is bounded by its socket timeout only)."""

    guard: Guard

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if _blocking(args):
            # A blocking read (the tailer's XREAD BLOCK) is bounded by its socket timeout,
            # and a slow wake-up of its own loop is no outage: other calls report those.
            self.guard.check()
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        async with self.guard.guarded():
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        pipe = GuardedPipeline(
            self.connection_pool, self.response_callbacks, transaction, shard_hint
        )
        pipe.guard = self.guard
        return pipe


def create_redis(
    url: str,
    *,
    timeout_s: float = 2.0,
    connect_timeout_s: float | None = None,
    retries: int | None = None,
    pool_size: int | None = None,
    guard: Guard | None = None,
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
    if guard is not None:
        # One retry, and only for a dropped connection (a restarted server): a timeout
        # means no answer, and waiting for it again would double the time to a 503.
        options["retry"] = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        pool_size = pool_size or 256
    if pool_size is None:
        return Redis.from_url(url, **options)
    if guard is None:
        pool = BlockingConnectionPool.from_url(
            url, max_connections=pool_size, timeout=connect_timeout_s, **options
        )
        return Redis.from_pool(pool)
    pool_class: type[GuardedPool] = type("GuardedPool", (GuardedPool,), {"guard": guard})
    pool = pool_class.from_url(url, max_connections=pool_size, timeout=connect_timeout_s, **options)
    client = GuardedRedis(connection_pool=pool)
    client.auto_close_connection_pool = True  # as from_pool: the client owns its pool
    client.guard = guard
    return client


@asynccontextmanager
async def open_redis(
    url: str, *, timeout_s: float = 2.0, pool_size: int = 256, guard: Guard | None = None
) -> AsyncIterator[Redis]:
    """A Redis client with a bounded pool (bursts wait for a connection), closed on exit."""
    client = create_redis(url, timeout_s=timeout_s, pool_size=pool_size, guard=guard)
    try:
        yield client
    finally:
        await client.aclose()
