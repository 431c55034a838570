"""The cache: read-through with race-free fills, invalidation, and a breaker around Redis.

The guarantee: once a write has returned (its transaction committed and its keys
invalidated), no read that starts later returns a value older than that write.
- A value enters Redis only through a fill lease taken before the database read; an
  invalidation deletes the value and the lease, so a fill of data read before the write
  is refused (scripts.FILL). Any value present was therefore read after the last write's
  invalidation of its key. A writer that refills its key (write-through) takes the lease
  over instead, reads after its commit and swaps the value before it returns
  (scripts.REPLACE); a later writer taking the lease makes it drop the value instead.
- When Redis fails, reads go to PostgreSQL through an open breaker, writes still commit,
  and the node moves the cache epoch before using Redis again, so an invalidation lost
  during the outage cannot leave a servable stale entry behind (store.py).

Limits, by design: a process killed between a commit and its invalidation (or a COMMIT
whose answer is lost with its connection) leaves that entry until its TTL; a node cut off
from a Redis that other nodes still reach cannot stop them serving what it failed to
invalidate until it moves the epoch on reconnecting; a Redis that loses acknowledged writes
without losing its epoch key (failover to a lagging replica) is not detected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from redis.asyncio import Redis

from azora_nexus.cache import codec
from azora_nexus.cache.breaker import Breaker, CacheUnavailable
from azora_nexus.cache.client import create_redis
from azora_nexus.cache.counters import CacheCollector, CacheStats, SharedCacheCounters
from azora_nexus.cache.keys import DEFAULT_PREFIX, CacheKey, KeyPattern
from azora_nexus.cache.leases import Entry, StampedeGuard, now_ms
from azora_nexus.cache.scripts import Status
from azora_nexus.cache.store import DurableEpoch, Store
from azora_nexus.config import Settings
from azora_nexus.metrics import NodeMetrics

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class CacheOptions:
    """How the cache behaves; `from_settings` reads the `AZORA_CACHE_*` variables."""

    prefix: str = DEFAULT_PREFIX
    ttl_s: float = 300.0  # how long a value lives unless a write removes it first
    timeout_s: float = 0.5  # a Redis call slower than this opens the breaker
    # Connecting (and waiting for a pooled connection) may take longer: a burst of new
    # connections on a busy machine is not an outage. Refused connections fail at once.
    connect_timeout_s: float = 2.0
    retry_s: float = 1.0  # how often an open breaker lets one probe through
    lease_ttl_s: float = 5.0  # a fill lease outlives a crashed loader by at most this
    wait_s: float = 1.0  # how long a reader waits for another's fill before loading itself
    scan_count: int = 1000  # SCAN page size for pattern invalidation
    pool_size: int = 64  # Redis connections; more concurrent calls queue for one

    @classmethod
    def from_settings(cls, settings: Settings) -> CacheOptions:
        return cls(
            ttl_s=settings.cache_ttl_s,
            timeout_s=settings.cache_timeout_s,
            retry_s=settings.cache_retry_s,
            wait_s=settings.cache_wait_s,
        )


class Cache:
    """Cache-aside over Redis for one node (see the module docstring for the guarantee)."""

    def __init__(
        self,
        redis: Redis,
        options: CacheOptions | None = None,
        *,
        durable: DurableEpoch | None = None,
    ) -> None:
        self.options = options or CacheOptions()
        self.stats = CacheStats()
        self.breaker = Breaker(self.options.retry_s)
        self.store = Store(
            redis,
            prefix=self.options.prefix,
            breaker=self.breaker,
            stats=self.stats,
            scan_count=self.options.scan_count,
            durable=durable,
        )
        self.guard = StampedeGuard(
            self.store, self.stats, lease_ttl_s=self.options.lease_ttl_s, wait_s=self.options.wait_s
        )
        self.collector = CacheCollector(self.stats, lambda: not self.breaker.is_closed)
        # This process's counters, or the node's when its workers share metric files.
        self.node_stats: Callable[[], CacheStats] = lambda: self.stats
        self._invalidations: set[asyncio.Task[None]] = set()

    async def read_through(
        self,
        key: CacheKey,
        loader: Callable[[], Awaitable[T]],
        *,
        ttl_s: float | None = None,
        soft_ttl_s: float | None = None,
    ) -> T:
        """`loader()`'s value through the cache, never older than a write that returned
        before this call; the JSON round trip of it on a hit and on a miss alike."""
        entry = self._entry(key, loader, ttl_s, soft_ttl_s)
        token = self.guard.tokens.next()  # used only if this read starts a soft refresh
        try:
            found = await self.store.lookup(key, token, self.guard.lease_ms, now_ms())
        except CacheUnavailable:
            found = None
        if found is not None and found.stored is not None:
            self.stats.hits += 1  # found at the first lookup
            if found.status is Status.HIT_REFRESH:
                self.stats.stale_served += 1
                self.guard.refresh(entry, token)
            return cast(T, codec.decode(found.stored))
        return cast(T, await self.guard.load(entry))

    async def read_through_json(
        self,
        key: CacheKey,
        loader: Callable[[], Awaitable[object]],
        *,
        ttl_s: float | None = None,
    ) -> bytes:
        """As `read_through`, but the value as its stored JSON bytes: a hit hands back what
        Redis holds without decoding it (a response body serialised once, at the fill)."""
        entry = self._entry(key, loader, ttl_s, None)
        token = self.guard.tokens.next()  # used only if the value has a soft deadline
        try:
            found = await self.store.lookup(key, token, self.guard.lease_ms, now_ms())
        except CacheUnavailable:
            found = None
        if found is not None and found.stored is not None:
            self.stats.hits += 1
            if found.status is Status.HIT_REFRESH:
                self.stats.stale_served += 1
                self.guard.refresh(entry, token)
            return codec.body(found.stored)
        # A miss: the loaded value's JSON round trip, serialised as the fill stored it.
        return codec.dumps(await self.guard.load(entry))

    async def invalidate(
        self,
        keys: Iterable[CacheKey],
        *,
        refill: Mapping[CacheKey, Callable[[], Awaitable[object]]] | None = None,
        ttl_s: float | None = None,
    ) -> None:
        """Remove the keys' values and refuse fills in flight; never raises for Redis.

        Each key in `refill` is instead reloaded with its loader and its value replaced
        before this returns (write-through): its lease is taken over in the same step as
        the other removals, so fills in flight are refused, and readers meanwhile still
        read the previous value (legal: the write has not returned) rather than miss. It
        runs to the end even if the caller is cancelled: the write has committed.
        """
        refill = refill or {}
        unique = list(dict.fromkeys([*keys, *refill]))
        if not unique:
            return
        self.stats.invalidations += len(unique)
        entries = {key: self._entry(key, loader, ttl_s, None) for key, loader in refill.items()}
        await self._shielded(self._invalidate(unique, entries))

    async def invalidate_pattern(self, pattern: KeyPattern) -> None:
        """Remove every key under `pattern` (SCAN, never KEYS); never raises for Redis."""
        self.stats.pattern_invalidations += 1
        await self._shielded(self._count_removed(pattern))

    def snapshot(self) -> dict[str, Any]:
        """The node's counters for `/cache/stats` (every worker's), with this worker's
        breaker state and the epoch."""
        return self.node_stats().as_dict() | {
            "breaker": self.breaker.state,
            "breakerTrips": self.breaker.trips,
            "epoch": self.store.epoch,
        }

    async def start(self) -> None:
        """Learn the epoch; with Redis down, start with the breaker open instead of failing."""
        await self.store.start()

    async def aclose(self) -> None:
        """Finish pending invalidations, then stop background loads."""
        await asyncio.gather(*self._invalidations, return_exceptions=True)
        await self.guard.aclose()

    def _entry(
        self,
        key: CacheKey,
        loader: Callable[[], Awaitable[Any]],
        ttl_s: float | None,
        soft_ttl_s: float | None,
    ) -> Entry:
        ttl = self.options.ttl_s if ttl_s is None else ttl_s
        return Entry(key, loader, int(ttl * 1000), int((soft_ttl_s or 0) * 1000))

    async def _invalidate(self, keys: list[CacheKey], refills: Mapping[CacheKey, Entry]) -> None:
        leases = {key: self.guard.tokens.next() for key in refills}
        await self.store.invalidate(keys, leases, self.guard.lease_ms)
        outcomes = await asyncio.gather(
            *(self.guard.refill(entry, leases[key]) for key, entry in refills.items()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # CacheUnavailable: the breaker moves the epoch

    async def _count_removed(self, pattern: KeyPattern) -> None:
        self.stats.pattern_keys_removed += await self.store.invalidate_pattern(pattern)

    async def _shielded(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(self._swallow(work))
        self._invalidations.add(task)
        task.add_done_callback(self._invalidations.discard)
        await asyncio.shield(task)

    async def _swallow(self, work: Awaitable[None]) -> None:
        # Unavailable means the breaker is open: this node moves the epoch before it uses
        # Redis again, which makes what this invalidation missed unreachable; with a
        # durable epoch it moves it now, before the write returns, for every node and
        # across restarts of Redis and of Nexus.
        try:
            await work
        except CacheUnavailable:
            try:
                await self.store.distrust()
            except Exception:
                logger.exception("cache: could not move the durable epoch")


@asynccontextmanager
async def open_cache(
    url: str,
    options: CacheOptions | None = None,
    *,
    metrics: NodeMetrics | None = None,
    durable: DurableEpoch | None = None,
) -> AsyncIterator[Cache]:
    """A cache on its own Redis pool (no retries: a failure must reach the breaker at once),
    its counters exported with the node's `metrics` when given."""
    options = options or CacheOptions()
    redis = create_redis(
        url,
        timeout_s=options.timeout_s,
        connect_timeout_s=options.connect_timeout_s,
        retries=0,
        pool_size=options.pool_size,
    )
    cache = Cache(redis, options, durable=durable)
    sharing: asyncio.Task[None] | None = None
    registry = None
    if metrics is not None and metrics.shared_dir is not None:
        counters = SharedCacheCounters(
            cache.stats, cache.collector.breaker_open, metrics.shared_dir
        )
        cache.node_stats = counters.node_stats
        sharing = asyncio.create_task(counters.run(), name="cache metrics")
    elif metrics is not None:
        registry = metrics.registry
        cache.collector.register(registry)
    try:
        await cache.start()
        yield cache
    finally:
        await cache.aclose()
        if sharing is not None:
            sharing.cancel()
            await asyncio.gather(sharing, return_exceptions=True)
        if registry is not None:
            registry.unregister(cache.collector)
        await redis.aclose()
