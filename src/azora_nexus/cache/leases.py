"""The stampede guard: readers missing one key at once cause one database load.

On one node, readers that miss the same key join one *flight* (a task). The flight answers
only readers that joined before it began reading: its answer (from Redis or the database)
was read after each of them started, so none can get a value older than a write that
returned before it asked. A reader arriving once the flight is under way waits for it to
end, then reads again (by then usually a hit).

Across nodes, a flight takes the key's fill lease in Redis before loading. A flight that
finds the lease held by another reader (or by a writer refilling the key it wrote) waits
for that value, woken by a fill on this node or polling for one on another, up to
`wait_s`; then it takes the lease over and loads itself: the first holder's fill is refused,
never mixed up. Past a value's soft TTL one reader refreshes it in the background while the
others go on reading the old value (a write deletes it, so it is never older than the last
write).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from azora_nexus.cache import codec
from azora_nexus.cache.breaker import CacheUnavailable
from azora_nexus.cache.counters import CacheStats
from azora_nexus.cache.keys import CacheKey
from azora_nexus.cache.scripts import Fill, Status
from azora_nexus.cache.store import Store

logger = logging.getLogger(__name__)

Loader = Callable[[], Awaitable[Any]]
LATE_RETRIES = 3


class Tokens:
    """Lease tokens, unique across nodes and restarts: a random prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}.{next(self._counter)}"


def now_ms() -> int:
    # Wall clock, not monotonic: soft deadlines are compared on every node.
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Entry:
    """How to load and store one key."""

    key: CacheKey
    loader: Loader
    ttl_ms: int
    soft_ttl_ms: int = 0

    def stored(self, value: Any) -> bytes:
        soft = now_ms() + self.soft_ttl_ms if self.soft_ttl_ms else 0
        return codec.encode(value, soft)


@dataclass(frozen=True)
class Outcome:
    value: Any  # the JSON round trip of what was read, so a hit and a miss look alike
    from_cache: bool


@dataclass
class Flight:
    future: asyncio.Future[Outcome]
    open: bool = True  # joiners still count as having started before it read


class StampedeGuard:
    """Coalesces misses per key on this node and across nodes through fill leases."""

    def __init__(
        self,
        store: Store,
        stats: CacheStats,
        *,
        lease_ttl_s: float,
        wait_s: float,
        poll_s: tuple[float, float] = (0.002, 0.05),
    ) -> None:
        self.store = store
        self.stats = stats
        self.lease_ms = max(1, int(lease_ttl_s * 1000))
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.tokens = Tokens()
        self._flights: dict[CacheKey, Flight] = {}
        self._filled: dict[CacheKey, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def load(self, entry: Entry) -> Any:
        """The value as Redis or the database holds it, read after this call began."""
        for _ in range(LATE_RETRIES):
            flight = self._flights.get(entry.key)
            created = flight is None
            if flight is None:
                flight = self._launch(entry)
            elif not flight.open:
                with contextlib.suppress(Exception):
                    await asyncio.shield(flight.future)
                continue  # it read before we started: read again
            outcome = await asyncio.shield(flight.future)
            self._count(outcome, shared=not created)
            return outcome.value
        self.stats.misses += 1
        return (await self._load_uncached(entry)).value

    def refresh(self, entry: Entry, token: str) -> None:
        """Reload a soft-expired value in the background under the lease `token` holds."""
        self.stats.refreshes += 1
        self._spawn(self._fill_or_log(entry, token))

    async def refill(self, entry: Entry, token: str) -> None:
        """A writer's reload of a key it invalidated under the lease `token`: the fresh
        value, or none if the load fails or a later write took the lease. Raises only
        CacheUnavailable (the breaker then moves the epoch before Redis is used again)."""
        self.stats.refills += 1
        self.stats.loads += 1
        try:
            stored: bytes | None = entry.stored(await entry.loader())
        except Exception:
            logger.exception("cache: refilling %s failed; invalidating it instead", entry.key)
            stored = None
        try:
            result = await self.store.replace(entry.key, token, stored, entry.ttl_ms)
        finally:
            self._wake(entry.key)
        if result is Fill.ACCEPTED:
            self.stats.fills += 1
        elif stored is not None:
            self.stats.fills_rejected += 1

    async def aclose(self) -> None:
        """Cancel background work (flights, refreshes) and wait for it to stop."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # Flights --------------------------------------------------------------------------------
    def _launch(self, entry: Entry) -> Flight:
        loop = asyncio.get_running_loop()
        flight = Flight(loop.create_future())
        # Retrieve a failure even when every reader was cancelled meanwhile.
        flight.future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._flights[entry.key] = flight
        self._spawn(self._fly(entry, flight))
        return flight

    async def _fly(self, entry: Entry, flight: Flight) -> None:
        flight.open = False
        try:
            flight.future.set_result(await self._read(entry))
        except asyncio.CancelledError:
            flight.future.cancel()
            raise
        except Exception as exc:
            flight.future.set_exception(exc)
        finally:
            if self._flights.get(entry.key) is flight:
                del self._flights[entry.key]

    async def _read(self, entry: Entry) -> Outcome:
        loop = asyncio.get_running_loop()
        token = self.tokens.next()
        deadline: float | None = None
        delay, max_delay = self.poll_s
        steal = False
        while True:
            try:
                found = await self.store.acquire(entry.key, token, self.lease_ms, steal)
            except CacheUnavailable:
                self.stats.fallbacks += 1
                return await self._load_uncached(entry)
            if found.status is Status.HIT:
                assert found.stored is not None
                return Outcome(codec.decode(found.stored), from_cache=True)
            if found.status is Status.LEASED:
                return Outcome(await self._load_and_fill(entry, token), from_cache=False)
            if deadline is None:
                deadline = loop.time() + self.wait_s
                self.stats.lease_waits += 1
            elif loop.time() >= deadline:
                self.stats.wait_timeouts += 1
                steal = True
                continue
            await self._wait_for_fill(entry.key, delay)
            delay = min(delay * 2, max_delay)

    async def _wait_for_fill(self, key: CacheKey, timeout_s: float) -> None:
        # A fill on this node wakes its waiters at once; one on another node is polled for.
        filled = self._filled.setdefault(key, asyncio.Event())
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(filled.wait(), timeout_s)
        finally:
            if self._filled.get(key) is filled:  # one flight per key waits: no one else
                del self._filled[key]

    def _wake(self, key: CacheKey) -> None:
        filled = self._filled.pop(key, None)
        if filled is not None:
            filled.set()

    async def _load_and_fill(self, entry: Entry, token: str) -> Any:
        try:
            self.stats.loads += 1
            stored = entry.stored(await entry.loader())
        except Exception:
            with contextlib.suppress(CacheUnavailable):
                await self.store.release(entry.key, token)
            self._wake(entry.key)
            raise
        try:
            result = await self.store.fill(entry.key, token, stored, entry.ttl_ms)
        except CacheUnavailable:
            result = None
        self._wake(entry.key)
        if result is Fill.ACCEPTED:
            self.stats.fills += 1
        elif result is not None:
            self.stats.fills_rejected += 1
        return codec.decode(stored)

    async def _load_uncached(self, entry: Entry) -> Outcome:
        self.stats.loads += 1
        return Outcome(codec.decode(codec.encode(await entry.loader())), from_cache=False)

    # Background work ------------------------------------------------------------------------
    async def _fill_or_log(self, entry: Entry, token: str) -> None:
        try:
            await self._load_and_fill(entry, token)
        except Exception:
            logger.exception("cache: refreshing %s failed", entry.key)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _count(self, outcome: Outcome, *, shared: bool) -> None:
        if outcome.from_cache:
            self.stats.wait_hits += 1
            return
        self.stats.misses += 1
        if shared:
            self.stats.coalesced += 1
