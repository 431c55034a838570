"""The composition root: `open_nexus(settings)` opens every part in order, closes in reverse."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis
from sqlalchemy import text

from azora_nexus.auth.hashing import Passwords
from azora_nexus.auth.tokens import resolve_secret
from azora_nexus.backends import BackendUrls, attach_backends, start_backends
from azora_nexus.backends.supervision import RestartCounter
from azora_nexus.cache.cache import Cache, CacheOptions, open_cache
from azora_nexus.cache.client import create_redis, open_redis
from azora_nexus.config import Settings
from azora_nexus.database.engine import Database, open_database
from azora_nexus.database.migrate import upgrade
from azora_nexus.database.notifications import Notifications
from azora_nexus.documents.client import Documents, open_documents
from azora_nexus.domain.ledger.group_commit import GroupCommit, bind_group_commit
from azora_nexus.domain.ledger.payouts import PayoutWorker
from azora_nexus.domain.privacy.erasure import reconcile_erasures
from azora_nexus.domain.privacy.identity import subject_key
from azora_nexus.domain.privacy.pending import keep_finishing
from azora_nexus.domain.privacy.revocation import CHANNEL as ERASED_CHANNEL
from azora_nexus.domain.privacy.revocation import ErasedUsers
from azora_nexus.domain.privacy.traces import TraceStores
from azora_nexus.epochs import CHANNEL as EPOCH_CHANNEL
from azora_nexus.epochs import DurableEpoch
from azora_nexus.events.background import open_events, stop_tasks
from azora_nexus.events.bus import EventBus
from azora_nexus.events.relay import Relay, asyncpg_dsn
from azora_nexus.events.tailer import StreamTailer
from azora_nexus.guard import Guards
from azora_nexus.metrics import NodeMetrics, bind_metrics
from azora_nexus.sync import bind_cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Nexus:
    """Every open part of one Nexus node."""

    settings: Settings
    urls: BackendUrls
    db: Database
    redis: Redis
    documents: Documents
    jwt_secret: str
    passwords: Passwords  # argon2 on bounded pools of its own (auth/hashing.py)
    subject_key: bytes  # keys `system.user.erased`'s subjectHmac (domain/privacy/identity.py)
    cache: Cache
    metrics: NodeMetrics  # this node's Prometheus metrics, for `/metrics`
    events: EventBus
    tailer: StreamTailer
    relay: Relay
    guards: Guards  # one circuit breaker per backend (guard.py)
    erased: ErasedUsers  # the erased users, in memory (domain/privacy/revocation.py)
    payouts: PayoutWorker  # wake() it after recording a distribution


@asynccontextmanager
async def open_backends(
    settings: Settings, *, migrate_to: str | None = None, attach: bool = False
) -> AsyncIterator[BackendUrls]:
    """Start the embedded server of every backend with no URL, then migrate to `migrate_to`
    (a revision, "head") when given: the one place Nexus does both, in this order.

    With `attach`, the servers of an `azora up` already running on the data dir are used
    instead of starting them (the CLI's seed beside a running node).
    """
    async with (attach_backends if attach else start_backends)(settings) as urls:
        if migrate_to is not None:
            await upgrade(urls.database, migrate_to)
        yield urls


@asynccontextmanager
async def open_nexus(
    settings: Settings, *, migrate: bool = False, background: bool = True, attach: bool = False
) -> AsyncIterator[Nexus]:
    """Start what is embedded (or `attach` to a running node's servers), migrate to head
    with `migrate`, connect to everything, and close it all on exit.

    With `background`, the outbox relay, the stream tailer, the archiver and the payout
    worker run meanwhile.
    """
    timeout_s = settings.backend_timeout_s
    async with AsyncExitStack() as stack:
        urls = await stack.enter_async_context(
            open_backends(settings, migrate_to="head" if migrate else None, attach=attach)
        )
        guards = Guards.create(timeout_s, settings.backend_retry_s)
        stack.push_async_callback(guards.aclose)
        db = await stack.enter_async_context(
            open_database(
                urls.database,
                timeout_s=timeout_s,
                pool_size=settings.db_pool_size,
                guard=guards.postgres,
                # A node serving requests answers 503 rather than wait on a frozen server;
                # a batch (azora seed) may run statements longer than that.
                statement_timeout_s=timeout_s if background else None,
            )
        )
        redis = await stack.enter_async_context(
            open_redis(urls.redis, timeout_s=timeout_s, guard=guards.redis)
        )
        documents = await stack.enter_async_context(
            open_documents(urls.mongodb, timeout_s=timeout_s, guard=guards.mongo)
        )
        await stack.enter_async_context(_probes(guards, urls, db, documents, timeout_s))
        # Under the breaker, so a PostgreSQL that is down or frozen stops the start in one
        # line naming it, within the backend timeout (unguarded: a bare ConnectionRefusedError).
        async with guards.postgres.guarded():
            durable = await _durable_state(db)
        metrics = NodeMetrics(shared_dir=settings.metrics_dir)
        metrics.add_file_backed(RestartCounter(settings.data_dir))
        bind_metrics(db.sessions, metrics)  # so the ledger's counters reach this node's
        cache = await stack.enter_async_context(
            open_cache(
                urls.redis,
                CacheOptions.from_settings(settings),
                metrics=metrics,
                durable=DurableEpoch(db) if durable else None,
            )
        )
        erased = ErasedUsers(db)
        if durable:
            await erased.refresh()
        notifications = Notifications(asyncpg_dsn(urls.database), timeout_s=timeout_s)
        await stack.enter_async_context(_listening(notifications, cache, erased))
        bind_cache(db.sessions, cache)  # so invalidate_after_commit(session, keys) finds it
        ledger = GroupCommit(
            db.engine,
            cache,
            metrics=metrics,
            window_s=settings.ledger_batch_window_s,
            max_batch=settings.ledger_batch_max,
            in_flight=settings.ledger_batch_in_flight,
        )
        bind_group_commit(db.sessions, ledger)  # so transfers on this node are batched
        stack.push_async_callback(ledger.aclose)
        events = await stack.enter_async_context(
            open_events(
                database_url=urls.database,
                redis=redis,
                documents=documents,
                stream_maxlen=settings.stream_maxlen,
                stream_hard_maxlen=settings.stream_hard_maxlen,
                outbox_retention_s=settings.outbox_retention_s,
                archive_retention_s=settings.archive_retention_s,
                metrics=metrics,
                background=background,
                db=db,
            )
        )
        payouts = PayoutWorker(
            db,
            lease_s=settings.payout_lease_s,
            poll_s=settings.payout_poll_s,
            batch_size=settings.payout_batch_size,
        )
        if background:
            task = asyncio.create_task(payouts.run(), name="payout worker")
            stack.push_async_callback(stop_tasks, [task])
        jwt_secret = resolve_secret(settings)
        passwords = Passwords.open(workers=settings.password_workers, queue=settings.password_queue)
        stack.callback(passwords.close)
        erasure_key = subject_key(settings.erasure_key, jwt_secret)
        if background and erased.loaded:
            stores = TraceStores(
                db=db,
                redis=redis,
                documents=documents,
                cache_prefix=cache.options.prefix,
                subject_key=erasure_key,
            )
            reconcile = asyncio.create_task(_reconcile(stores), name="erasure reconciliation")
            finishing = asyncio.create_task(keep_finishing(stores), name="erasure traces")
            stack.push_async_callback(stop_tasks, [reconcile, finishing])
        yield Nexus(
            settings=settings,
            urls=urls,
            db=db,
            redis=redis,
            documents=documents,
            jwt_secret=jwt_secret,
            passwords=passwords,
            subject_key=erasure_key,
            cache=cache,
            metrics=metrics,
            events=events.bus,
            tailer=events.tailer,
            relay=events.relay,
            guards=guards,
            erased=erased,
            payouts=payouts,
        )


async def _reconcile(stores: TraceStores) -> None:
    """Erase again whom a restore brought back (the archive remembers the erasure)."""
    try:
        await reconcile_erasures(stores)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.warning("could not reconcile erasures at start (%s)", exc)


async def _durable_state(db: Database) -> bool:
    """Whether the schema has the tables of the fault state (migration 0002); a node on an
    older schema still serves, with the cache epoch in Redis only and no erased users."""
    async with db.sessions() as session:
        found = (await session.execute(text("SELECT to_regclass('epochs') IS NOT NULL"))).scalar()
    if not found:
        logger.warning("the database is not migrated to head: run `azora migrate`")
    return bool(found)


@asynccontextmanager
async def _listening(
    notifications: Notifications, cache: Cache, erased: ErasedUsers
) -> AsyncIterator[None]:
    """What this node follows through LISTEN (and, for erasures, a poll as well): the cache
    epoch other nodes move, and the users they erase."""
    durable = cache.store.durable

    async def resync() -> None:
        if durable is not None:
            cache.store.heard(await durable.current())

    if durable is not None:
        notifications.subscribe(EPOCH_CHANNEL, cache.store.heard, on_connect=resync)
    tasks = [asyncio.create_task(notifications.run(), name="notifications")]
    if erased.loaded:
        notifications.subscribe(ERASED_CHANNEL, erased.heard, on_connect=erased.refresh)
        tasks.append(asyncio.create_task(erased.follow(), name="erased users"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def _probes(
    guards: Guards, urls: BackendUrls, db: Database, documents: Documents, timeout_s: float
) -> AsyncIterator[None]:
    """How each open breaker asks whether its backend is back: a real round trip on a
    connection of its own (the pools refuse while the breaker is open)."""
    dsn = asyncpg_dsn(urls.database)
    redis_probe = create_redis(urls.redis, timeout_s=timeout_s, retries=0)

    async def postgres() -> None:
        conn = await asyncpg.connect(dsn, timeout=timeout_s)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close(timeout=timeout_s)

    async def fresh_pool() -> None:
        # Connections from before the outage may be dead (a restarted server): start anew.
        await db.engine.dispose()

    guards.postgres.probe, guards.postgres.on_recovery = postgres, fresh_pool
    guards.redis.probe = redis_probe.ping
    guards.mongo.probe = lambda: documents.ping(timeout_s)
    guards.mongo.on_recovery = documents.create_indexes
    for guard in guards.all.values():
        if guard.is_open:
            # Opened before it had a probe (MongoDB down at start): probing starts now,
            # or the breaker stayed open until something else failed on that backend.
            guard.failed(guard.reason)
    try:
        yield
    finally:
        await guards.aclose()
        await redis_probe.aclose()
