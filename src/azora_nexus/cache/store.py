"""Cache entries in Redis under the current epoch, every call guarded by the circuit breaker.

The epoch: `<prefix>:epoch` holds a random token and every entry's key starts with it.
A node that saw Redis fail (so an invalidation of its may be lost, or Redis itself lost
writes) moves the epoch, in its breaker's probe, before it reads or fills anything again:
every entry written before the outage becomes unreachable at once, for every node, since
each script checks the epoch it is given against the stored one. The token is random rather
than a counter so a Redis that lost its data (or evicted the key) can never bring back an
epoch that old entries still carry.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from azora_nexus.cache import keys
from azora_nexus.cache.batching import ScriptBatch
from azora_nexus.cache.breaker import Admission, Breaker, CacheUnavailable
from azora_nexus.cache.counters import CacheStats
from azora_nexus.cache.scripts import Fill, Scripts, Status

logger = logging.getLogger(__name__)

T = TypeVar("T")
EPOCH_RETRIES = 3


def new_epoch() -> str:
    return secrets.token_hex(6)


class DurableEpoch(Protocol):
    """Where the epoch is decided when Redis alone cannot be trusted with it (epochs.py):
    a Redis restarted from an old AOF brings its old epoch back with the old entries."""

    async def current(self) -> str: ...

    async def move(self) -> str: ...


@dataclass(frozen=True)
class Found:
    """A lookup's answer: what it found and the stored value, if any."""

    status: Status
    stored: bytes | None = None


class Store:
    """One node's view of the cache entries in Redis."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        breaker: Breaker,
        stats: CacheStats,
        scan_count: int = 1000,
        durable: DurableEpoch | None = None,
    ) -> None:
        self.redis = redis
        self.durable = durable
        self.prefix = prefix
        self.breaker = breaker
        self.stats = stats
        self.scan_count = scan_count
        self.scripts = Scripts(redis)
        # Lookups are the hot path (every cached read): those of one loop turn go together.
        self.lookups = ScriptBatch(redis, self.scripts.lookup)
        self.epoch: str | None = None
        self._epoch_key = keys.epoch_key(prefix)

    # Entries --------------------------------------------------------------------------------
    async def lookup(self, key: keys.CacheKey, token: str, lease_ms: int, now_ms: int) -> Found:
        """The value, and past its soft deadline the refresh lease when nobody holds it."""
        return await self._guarded(
            lambda: self._entry_script(self.lookups, key, now_ms, token, lease_ms)
        )

    async def acquire(self, key: keys.CacheKey, token: str, lease_ms: int, steal: bool) -> Found:
        """The value, or the fill lease (taken over from its holder when `steal`)."""
        return await self._guarded(
            lambda: self._entry_script(
                self.scripts.acquire, key, token, lease_ms, "1" if steal else "0"
            )
        )

    async def fill(self, key: keys.CacheKey, token: str, stored: bytes, ttl_ms: int) -> Fill:
        """Store the value only if our lease is intact: no write since the read began."""

        async def run() -> Fill:
            epoch = self._current()
            reply = await self.scripts.fill(
                keys=self._entry_keys(epoch, key), args=[epoch, token, stored, ttl_ms]
            )
            return Fill(int(reply))

        return await self._guarded(run)

    async def replace(
        self, key: keys.CacheKey, token: str, stored: bytes | None, ttl_ms: int
    ) -> Fill:
        """A writer's refill: store `stored` if the writer's lease is intact, else (or when
        `stored` is None) leave no value. Epoch moved: the old entries are unreachable."""

        async def run() -> Fill:
            epoch = self._current()
            reply = await self.scripts.replace(
                keys=self._entry_keys(epoch, key), args=[epoch, token, stored or b"", ttl_ms]
            )
            return Fill(int(reply))

        return await self._guarded(run)

    async def release(self, key: keys.CacheKey, token: str) -> None:
        """Give a lease back (the load failed) so waiters need not wait it out."""

        async def run() -> None:
            await self.scripts.release(
                keys=[keys.lease_key(self.prefix, self._current(), key)], args=[token]
            )

        await self._guarded(run)

    async def invalidate(
        self,
        cache_keys: Sequence[keys.CacheKey],
        leases: Mapping[keys.CacheKey, str] | None = None,
        lease_ms: int = 0,
    ) -> int:
        """Delete the values and the leases of `cache_keys`: an in-flight fill is refused.

        A key in `leases` keeps its value and gets that token as its lease instead, for its
        writer's `replace`, which must follow before the write returns.
        """
        tokens = [(leases or {}).get(key, "") for key in cache_keys]

        async def run() -> int:
            for _ in range(EPOCH_RETRIES):
                epoch = self._current()
                entry_keys = [k for key in cache_keys for k in self._entry_keys(epoch, key)[1:]]
                reply = await self.scripts.invalidate(
                    keys=[self._epoch_key, *entry_keys], args=[epoch, lease_ms, *tokens]
                )
                if int(reply[0]) != Status.EPOCH_MOVED:
                    return int(reply[1])
                await self._adopt(reply[1])
            raise CacheUnavailable("the cache epoch keeps moving")

        return await self._guarded(run)

    async def invalidate_pattern(self, key_pattern: keys.KeyPattern) -> int:
        """Delete every value and lease under the pattern; returns how many values went.

        Leases go first, then values. SCAN returns every key that exists for the whole scan,
        so a fill that began before the write either has its lease found and deleted (and
        is refused), or completed during the lease pass, its value then existing for the
        whole value pass and being found there.
        """

        async def run() -> int:
            removed = 0
            for _ in range(EPOCH_RETRIES):
                epoch = self._current()
                await self._scan_delete(keys.match(self.prefix, epoch, keys.LEASE, key_pattern))
                removed += await self._scan_delete(
                    keys.match(self.prefix, epoch, keys.VALUE, key_pattern)
                )
                now = await self._read_epoch()
                if now == epoch.encode():
                    return removed
                await self._adopt(now)  # moved meanwhile: do the new epoch too
            raise CacheUnavailable("the cache epoch keeps moving")

        return await self._guarded(run)

    async def _scan_delete(self, match: str) -> int:
        removed = 0
        cursor = 0
        while True:
            cursor, found = await self.redis.scan(cursor, match=match, count=self.scan_count)
            if found:
                removed += int(await self.redis.unlink(*found))
            if cursor == 0:
                return removed

    # The epoch ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Learn the current epoch (creating one on an empty Redis); never raises."""
        try:
            await self._guarded(self._noop)
        except CacheUnavailable:
            logger.warning("cache: Redis unavailable at start; reads go to the database")

    async def _noop(self) -> None:
        return None

    def _current(self) -> str:
        assert self.epoch is not None  # set by _guarded before any operation runs
        return self.epoch

    async def _adopt(self, seen: bytes) -> None:
        if self.durable is not None:
            # PostgreSQL decides; Redis's copy is repaired when it differs (an old AOF).
            decided = await self.durable.current()
            if seen.decode() != decided:
                await self.redis.set(self._epoch_key, decided)
            self.epoch = decided
            return
        if seen:
            self.epoch = seen.decode()
            return
        reply = await self.scripts.ensure_epoch(keys=[self._epoch_key], args=[new_epoch()])
        self.epoch = reply.decode()

    async def _read_epoch(self) -> bytes:
        stored = await self.redis.get(self._epoch_key)
        return stored.encode() if isinstance(stored, str) else stored or b""

    async def _move_epoch(self) -> None:
        epoch = new_epoch() if self.durable is None else await self.durable.move()
        await self.redis.set(self._epoch_key, epoch)
        self.epoch = epoch
        self.stats.epoch_bumps += 1
        logger.info("cache: Redis is back; moved the cache epoch to %s", epoch)

    async def distrust(self) -> None:
        """An invalidation may be lost: move the durable epoch before the write returns, so
        no node serves an entry from before it, whatever Redis keeps."""
        if self.durable is None:
            return
        self.epoch = await self.durable.move()
        self.stats.epoch_bumps += 1
        logger.warning(
            "cache: an invalidation did not reach Redis; moved the epoch to %s", self.epoch
        )

    def heard(self, epoch: str) -> None:
        """Another node moved the epoch (NOTIFY): use it from the next call on."""
        if epoch and epoch != self.epoch:
            self.epoch = epoch

    # Plumbing -------------------------------------------------------------------------------
    def _entry_keys(self, epoch: str, key: keys.CacheKey) -> list[str]:
        return [
            self._epoch_key,
            keys.value_key(self.prefix, epoch, key),
            keys.lease_key(self.prefix, epoch, key),
        ]

    async def _entry_script(self, script: Any, key: keys.CacheKey, *args: object) -> Found:
        for _ in range(EPOCH_RETRIES):
            epoch = self._current()
            status, stored = await script(keys=self._entry_keys(epoch, key), args=[epoch, *args])
            if int(status) != Status.EPOCH_MOVED:
                return Found(Status(int(status)), stored or None)
            await self._adopt(stored)
        raise CacheUnavailable("the cache epoch keeps moving")

    async def _guarded(self, op: Callable[[], Awaitable[T]]) -> T:
        admission = self.breaker.admit()
        if admission is None:
            raise CacheUnavailable("the cache circuit is open")
        try:
            if admission is Admission.PROBE:
                await self._move_epoch()
            elif self.epoch is None:
                await self._adopt(await self._read_epoch())
            result = await op()
        except (RedisError, OSError, CacheUnavailable) as exc:
            if self.breaker.is_closed:
                logger.warning("cache: Redis failed (%s); reads go to the database", exc)
            self.breaker.failed(admission)
            self.stats.errors += 1
            raise CacheUnavailable(str(exc)) from exc
        except BaseException:
            # A cancelled probe must not leave the breaker waiting for it forever.
            if admission is Admission.PROBE:
                self.breaker.failed(admission)
            raise
        self.breaker.succeeded(admission)
        return result
