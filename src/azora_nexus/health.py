"""Backend health: a real round trip to each backend, all at once, each bounded in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from azora_nexus.database.engine import Database
from azora_nexus.documents.client import Documents


@dataclass(frozen=True)
class Check:
    """One backend's answer: whether it answered, how fast, or why not."""

    name: str
    ok: bool
    latency_ms: float
    error: str | None = None


async def timed_check(name: str, probe: Callable[[], Awaitable[object]], timeout_s: float) -> Check:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await probe()
    except TimeoutError:
        return Check(name, False, _elapsed_ms(started), f"no answer within {timeout_s:g} s")
    except Exception as exc:
        return Check(name, False, _elapsed_ms(started), f"{type(exc).__name__}: {exc}")
    return Check(name, True, _elapsed_ms(started))


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def check_backends(
    db: Database, redis: Redis, documents: Documents, timeout_s: float
) -> list[Check]:
    """Query PostgreSQL, PING Redis and ping MongoDB concurrently."""
    return list(
        await asyncio.gather(
            timed_check("postgres", lambda: db.ping(timeout_s), timeout_s),
            timed_check("redis", redis.ping, timeout_s),
            timed_check("mongo", lambda: documents.ping(timeout_s), timeout_s),
        )
    )
