"""Cache-aside reads and invalidate-after-commit writes: no stale read after a write returns.

Reads: `await read_through(cache, keys.user(user_id), load_user)`.
Writes: inside the transaction, `invalidate_after_commit(session, [keys.user(user_id)])`.
The keys are invalidated when the transaction commits, before `commit()` (or the exit of
`session.begin()` / `Database.transaction()`) returns to the writer, so by the time a write
returns, no read can be served the old value; a rolled-back transaction invalidates nothing.

The seed's API (`get_user_with_cache`, `update_enrollment_progress`, ...) is one line of
each on top of the domain services, so it lives above this module (the domain imports sync,
not the reverse): in the domain's services and the `Integration` facade, e.g.::

    # users.get_user: cache-aside read
    await read_through(cache, keys.user(user_id), lambda: load_user(db, user_id))
    # users.update_profile / education progress, inside the transaction:
    invalidate_after_commit(session, [keys.user(user_id)])
    invalidate_after_commit(session, [keys.enrollment(enrollment_id),
                                      keys.user_enrollments(user_id)])
    # or, to hand the next readers the new value instead of a miss (write-through):
    refill_after_commit(session, keys.user(user_id), lambda: load_user(db, user_id))
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_only

from azora_nexus.cache.cache import Cache
from azora_nexus.cache.keys import CacheKey, KeyPattern

logger = logging.getLogger(__name__)

T = TypeVar("T")

CACHE_INFO = "azora.cache"  # the Cache a session invalidates through (see bind_cache)
PENDING_INFO = "azora.cache.pending"  # what to do once this transaction commits
COMMITTED_INFO = "azora.cache.committed"  # the outermost transaction has committed
HOOKED_INFO = "azora.cache.hooked"


@dataclass
class Pending:
    """The invalidations one transaction owes once it commits."""

    cache: Cache
    keys: dict[CacheKey, None] = field(default_factory=dict)  # ordered set
    patterns: dict[KeyPattern, None] = field(default_factory=dict)
    refills: dict[CacheKey, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    ttl_s: float | None = None  # for the refilled values

    async def run(self) -> None:
        """Invalidate and refill, then invalidate the patterns; never raises (the commit is
        done)."""
        try:
            await self.cache.invalidate(self.keys, refill=self.refills, ttl_s=self.ttl_s)
            for pattern in self.patterns:
                await self.cache.invalidate_pattern(pattern)
        except Exception:
            logger.exception("cache: invalidation after commit failed")


def bind_cache(sessions: async_sessionmaker[AsyncSession], cache: Cache) -> None:
    """Every session `sessions` makes from now on invalidates through `cache`."""
    info = dict(sessions.kw.get("info") or {})
    info[CACHE_INFO] = cache
    sessions.configure(info=info)


async def read_through(
    cache: Cache,
    key: CacheKey,
    loader: Callable[[], Awaitable[T]],
    *,
    ttl_s: float | None = None,
    soft_ttl_s: float | None = None,
) -> T:
    """`loader()`'s value through the cache, never older than a write that returned before
    this call. `loader` must read in its own transaction, begun after it is called."""
    return await cache.read_through(key, loader, ttl_s=ttl_s, soft_ttl_s=soft_ttl_s)


async def read_through_json(
    cache: Cache, key: CacheKey, loader: Callable[[], Awaitable[object]]
) -> bytes:
    """`read_through` as JSON bytes: a hit returns the stored bytes undecoded (a response
    body serialised once), with the same guarantee."""
    return await cache.read_through_json(key, loader)


def invalidate_after_commit(
    session: AsyncSession,
    keys: Iterable[CacheKey] = (),
    *,
    patterns: Iterable[KeyPattern] = (),
    cache: Cache | None = None,
) -> None:
    """Invalidate `keys` (and every key under `patterns`) once this transaction commits,
    before the commit returns; nothing if it rolls back."""
    pending = _pending(session, cache)
    pending.keys.update(dict.fromkeys(keys))
    pending.patterns.update(dict.fromkeys(patterns))


def refill_after_commit(
    session: AsyncSession,
    key: CacheKey,
    loader: Callable[[], Awaitable[object]],
    *,
    ttl_s: float | None = None,
    cache: Cache | None = None,
) -> None:
    """Once this transaction commits, replace `key`'s value with `loader()`'s before the
    commit returns (write-through): readers keep finding a value instead of missing, and
    never one older than this write once it has returned. `loader` reads in its own
    transaction (the writer's connection is back in the pool by then)."""
    pending = _pending(session, cache)
    pending.refills[key] = loader
    if ttl_s is not None:
        pending.ttl_s = ttl_s


def _pending(session: AsyncSession, cache: Cache | None) -> Pending:
    if not session.in_transaction():
        raise RuntimeError("invalidate_after_commit needs the transaction whose commit it follows")
    sync_session = session.sync_session
    info = sync_session.info
    chosen = cache or info.get(CACHE_INFO)
    if chosen is None:
        raise RuntimeError("no cache: pass cache= or bind_cache() the session factory")
    if not info.get(HOOKED_INFO):
        event.listen(sync_session, "after_commit", _after_commit)
        event.listen(sync_session, "after_transaction_end", _after_transaction_end)
        info[HOOKED_INFO] = True
    pending: Pending | None = info.get(PENDING_INFO)
    if pending is None:
        pending = info[PENDING_INFO] = Pending(chosen)
    elif pending.cache is not chosen:
        raise RuntimeError("one transaction invalidates through one cache")
    return pending


def _after_commit(sync_session: Session) -> None:
    # Releasing a savepoint fires after_commit too: only the outermost commit counts.
    if not sync_session.in_nested_transaction():
        sync_session.info[COMMITTED_INFO] = True


def _after_transaction_end(sync_session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    info = sync_session.info
    pending: Pending | None = info.pop(PENDING_INFO, None)
    if info.pop(COMMITTED_INFO, False) and pending is not None:
        # The outermost transaction committed and gave its connection back to the pool (so
        # a refill's load cannot wait on a pool this writer exhausts). AsyncSession commits
        # inside a greenlet: await_only runs the async invalidation right here, so it is
        # over before the awaited commit returns to the writer.
        await_only(pending.run())
