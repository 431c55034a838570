"""The composition root: `open_nexus(settings)` opens every part in order, closes in reverse."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis

from azora_nexus.auth.tokens import resolve_secret
from azora_nexus.backends import BackendUrls, attach_backends, start_backends
from azora_nexus.cache.cache import Cache, CacheOptions, open_cache
from azora_nexus.cache.client import open_redis
from azora_nexus.config import Settings
from azora_nexus.database.engine import Database, open_database
from azora_nexus.database.migrate import upgrade
from azora_nexus.documents.client import Documents, open_documents
from azora_nexus.events.background import open_events
from azora_nexus.events.bus import EventBus
from azora_nexus.events.relay import Relay
from azora_nexus.events.tailer import StreamTailer
from azora_nexus.metrics import NodeMetrics, bind_metrics
from azora_nexus.sync import bind_cache


@dataclass(frozen=True)
class Nexus:
    """Every open part of one Nexus node."""

    settings: Settings
    urls: BackendUrls
    db: Database
    redis: Redis
    documents: Documents
    jwt_secret: str
    cache: Cache
    metrics: NodeMetrics  # this node's Prometheus metrics, for `/metrics`
    events: EventBus
    tailer: StreamTailer
    relay: Relay


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

    With `background`, the outbox relay, the stream tailer and the archiver run meanwhile.
    """
    timeout_s = settings.backend_timeout_s
    async with AsyncExitStack() as stack:
        urls = await stack.enter_async_context(
            open_backends(settings, migrate_to="head" if migrate else None, attach=attach)
        )
        db = await stack.enter_async_context(
            open_database(urls.database, timeout_s=timeout_s, pool_size=settings.db_pool_size)
        )
        redis = await stack.enter_async_context(open_redis(urls.redis, timeout_s=timeout_s))
        documents = await stack.enter_async_context(
            open_documents(urls.mongodb, timeout_s=timeout_s)
        )
        metrics = NodeMetrics(shared_dir=settings.metrics_dir)
        bind_metrics(db.sessions, metrics)  # so the ledger's counters reach this node's
        cache = await stack.enter_async_context(
            open_cache(urls.redis, CacheOptions.from_settings(settings), metrics=metrics)
        )
        bind_cache(db.sessions, cache)  # so invalidate_after_commit(session, keys) finds it
        events = await stack.enter_async_context(
            open_events(
                database_url=urls.database,
                redis=redis,
                documents=documents,
                stream_maxlen=settings.stream_maxlen,
                metrics=metrics,
                background=background,
            )
        )
        yield Nexus(
            settings=settings,
            urls=urls,
            db=db,
            redis=redis,
            documents=documents,
            jwt_secret=resolve_secret(settings),
            cache=cache,
            metrics=metrics,
            events=events.bus,
            tailer=events.tailer,
            relay=events.relay,
        )
