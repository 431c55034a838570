"""The event bus of one node and its background workers: relay, tailer, archiver, retention."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from azora_nexus.database.engine import Database
from azora_nexus.documents.client import Documents
from azora_nexus.events.archive import Archive
from azora_nexus.events.archiver import Archiver
from azora_nexus.events.bus import Detour, EventBus
from azora_nexus.events.history import History
from azora_nexus.events.relay import Relay
from azora_nexus.events.retention import Retention
from azora_nexus.events.stream import EventStream
from azora_nexus.events.tailer import StreamTailer
from azora_nexus.guard import log_failure
from azora_nexus.metrics import NodeMetrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventParts:
    """What the rest of Nexus uses of the event system."""

    bus: EventBus
    tailer: StreamTailer
    relay: Relay
    archiver: Archiver
    retention: Retention


@asynccontextmanager
async def open_events(
    *,
    database_url: str,
    redis: Redis,
    documents: Documents,
    stream_maxlen: int,
    stream_hard_maxlen: int | None = None,
    outbox_retention_s: float = 604_800.0,
    archive_retention_s: float | None = None,
    metrics: NodeMetrics | None = None,
    background: bool = True,
    db: Database | None = None,
) -> AsyncIterator[EventParts]:
    """The bus; with `background`, its relay, tailer and archiver run until exit."""
    stream = EventStream(
        redis, maxlen=stream_maxlen, hard_maxlen=stream_hard_maxlen, metrics=metrics
    )
    archive = Archive(documents)
    parts = EventParts(
        bus=EventBus(
            stream=stream,
            history=History(stream=stream, archive=archive),
            detour=None if db is None else Detour(db),
        ),
        tailer=StreamTailer(stream),
        relay=Relay(database_url, stream),
        archiver=Archiver(redis, archive),
        retention=Retention(
            database_url,
            archive,
            outbox_retention_s=outbox_retention_s,
            archive_retention_s=archive_retention_s,
        ),
    )
    if not background:
        yield parts
        return
    await parts.tailer.start()
    tasks = [
        _spawn(parts.relay.run(), "outbox relay"),
        _spawn(parts.tailer.run(), "stream tailer"),
        _spawn(parts.archiver.run(), "archiver"),
        _spawn(parts.retention.run(), "retention"),
        _spawn(keep_audience_index(stream), "audience index"),
    ]
    try:
        yield parts
    finally:
        await stop_tasks(tasks)


async def keep_audience_index(
    stream: EventStream, *, check_s: float = 30.0, trim_every: int = 20, retry_s: float = 1.0
) -> None:
    """The stream's audience index (events/audience.py) takes in any entry written without
    it (a stream from before it, or a Redis that lost the index), and quiet audiences'
    members below the stream's oldest entry go now and then."""
    rounds = 0
    while True:
        try:
            indexed = await stream.index_backlog()
            if indexed:
                logger.info("audience index: %d stream entries indexed", indexed)
            if rounds % trim_every == 0:
                await stream.trim_audience_index()
            rounds += 1
            await asyncio.sleep(check_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_failure(logger, "audience index", exc, retry_s)
            await asyncio.sleep(retry_s)


async def stop_tasks(tasks: list[asyncio.Task[None]], timeout_s: float = 3.0) -> None:
    """Cancel the workers until they end, but never let a stuck driver call hold up exit.

    One cancel is not enough on Python 3.11: `asyncio.wait_for` (asyncpg's timeouts use it)
    drops a cancellation that arrives as its inner call completes, and the loop goes on. So
    the cancel is repeated until the task ends.
    """
    deadline = time.monotonic() + timeout_s
    pending = set(tasks)
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)
    for task in pending:
        logger.warning("%s did not stop within %.0f s; leaving it", task.get_name(), timeout_s)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            logger.error("%s ended with %r", task.get_name(), task.exception())


def _spawn(work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    return asyncio.create_task(work, name=name)
