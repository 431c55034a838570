"""What each store keeps: bytes, items, the oldest item and its retention setting.

Read by `azora status` and, at scrape time, by `/metrics` (the `azora_storage_*` gauges
the dashboard's storage row plots). Every reading is cheap on a large store: outbox rows
are counted exactly only in partitions under 10 MB (PostgreSQL's estimate beyond), the
archive's count is the collection's estimate, and oldest items come from indexes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from azora_nexus.backends.launcher import backend_status, embedded_servers
from azora_nexus.backends.postgres import EmbeddedPostgres
from azora_nexus.backends.process import ServerRecord
from azora_nexus.backends.wal import SEGMENT, WalArchive
from azora_nexus.cache.client import create_redis
from azora_nexus.config import Settings
from azora_nexus.database.engine import create_engine
from azora_nexus.documents.client import open_documents
from azora_nexus.events.archive import Archive
from azora_nexus.events.models import OUTBOX_TABLE
from azora_nexus.events.stream import STREAM_KEY

EXACT_COUNT_PAGES = 1280  # 10 MB of 8 KB pages

_OUTBOX_LEAVES = text(
    "SELECT c.relname, c.reltuples::float8 AS reltuples, c.relpages,"
    " pg_total_relation_size(c.oid) AS bytes"
    f" FROM pg_partition_tree('{OUTBOX_TABLE}'::regclass) t JOIN pg_class c ON c.oid = t.relid"
    " WHERE t.isleaf"
)
_OUTBOX_OLDEST = text(
    f"SELECT extract(epoch FROM created_at)::float8 FROM {OUTBOX_TABLE} ORDER BY id LIMIT 1"
)


@dataclass(frozen=True)
class StoreUsage:
    """One store's footprint; None where it could not be read."""

    store: str  # outbox, wal_archive, stream, archive
    backend: str
    bytes: int | None
    items: int | None
    oldest_at: float | None  # epoch seconds of the oldest item kept
    retention_s: float | None  # None: kept forever, or bounded by count
    retention: str  # the setting, for people

    def oldest_age_s(self, now: float | None = None) -> float | None:
        if self.oldest_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.oldest_at)


def describe_s(seconds: float | None) -> str:
    if seconds is None:
        return "forever"
    for unit, size in (("days", 86_400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


async def outbox_usage(conn: AsyncConnection, retention_s: float) -> StoreUsage:
    """The outbox's partitions together."""
    size, rows = 0, 0
    for leaf in (await conn.execute(_OUTBOX_LEAVES)).all():
        size += leaf.bytes
        if leaf.reltuples < 0 or leaf.relpages < EXACT_COUNT_PAGES:
            rows += (await conn.execute(text(f"SELECT count(*) FROM {leaf.relname}"))).scalar_one()
        else:
            rows += int(leaf.reltuples)
    oldest = (await conn.execute(_OUTBOX_OLDEST)).scalar()
    return StoreUsage(
        "outbox", "postgres", size, rows, oldest, retention_s, describe_s(retention_s)
    )


def _wal_usage(archive: WalArchive, retention_s: float) -> StoreUsage:
    size, segments = 0, 0
    for path in archive.root.rglob("*") if archive.root.exists() else []:
        if path.is_file() and not path.is_symlink():
            size += path.stat().st_size
            if path.parent == archive.wal and SEGMENT.match(path.name):
                segments += 1
    bases = archive.bases()
    oldest = bases[0].taken_at if bases else None
    return StoreUsage(
        "wal_archive", "files", size, segments, oldest, retention_s, describe_s(retention_s)
    )


def wal_archive_root(settings: Settings, database_url: str | None = None) -> Path | None:
    """Where the embedded PostgreSQL archives its WAL; None for an external server.

    A node of `azora up` is handed the embedded server's URL as its DATABASE_URL: the
    server's record in the data dir tells it apart from an external one.
    """
    server = embedded_servers(settings)["postgres"]
    if not isinstance(server, EmbeddedPostgres):
        return None
    record = ServerRecord.read(server.data_dir)
    embedded = settings.database_url is None or (
        record is not None and record.url == (database_url or settings.database_url)
    )
    return server.archive.root if embedded else None


async def wal_usage(archive_root: Path, retention_s: float) -> StoreUsage:
    """The embedded PostgreSQL's WAL archive: bases and segments (items: segments)."""
    return await asyncio.to_thread(_wal_usage, WalArchive(archive_root), retention_s)


async def stream_usage(redis: Redis, maxlen: int, key: str = STREAM_KEY) -> StoreUsage:
    """The event stream: its entries, and Valkey's AOF on disk (the whole server's)."""
    persistence: Any = await redis.info("persistence")
    entries: Any = await redis.xrange(key, "-", "+", count=1)
    oldest = None
    if entries:
        first = entries[0][0]
        oldest = int((first.decode() if isinstance(first, bytes) else first).split("-")[0]) / 1000
    aof = persistence.get("aof_current_size")
    return StoreUsage(
        "stream",
        "redis",
        None if aof is None else int(aof),
        await redis.xlen(key),
        oldest,
        None,
        f"{maxlen} entries",
    )


async def archive_usage(archive: Archive, retention_s: float | None) -> StoreUsage:
    """The Mongo event archive."""
    events = archive.documents.events
    try:
        stats: Any = await archive.documents.database.command("collStats", events.name)
        size: int | None = int(stats.get("storageSize", stats.get("size", 0)))
    except Exception:  # a server without collStats still tells the rest
        size = None
    oldest = await archive.oldest()
    return StoreUsage(
        "archive",
        "mongo",
        size,
        await events.estimated_document_count(),
        None if oldest is None else oldest.order[0] / 1000,
        retention_s,
        describe_s(retention_s),
    )


async def survey(settings: Settings) -> list[StoreUsage | str]:
    """Every store's usage, from outside a node (`azora status`): the servers that run are
    asked, the WAL archive is read from disk; a store that cannot be read is named."""
    urls = {b.name: b.url for b in backend_status(settings) if b.running and b.url}
    timeout_s = settings.backend_timeout_s
    found: list[StoreUsage | str] = []

    async def attempt(name: str, read: Callable[[], Awaitable[StoreUsage]]) -> None:
        try:
            async with asyncio.timeout(timeout_s * 5):
                found.append(await read())
        except Exception as exc:  # one store down must not hide the others
            found.append(f"{name}: not read ({type(exc).__name__}: {exc})")

    if url := urls.get("postgres"):
        await attempt("outbox", partial(_outbox_at, url, settings.outbox_retention_s))
    else:
        found.append("outbox: postgres is not running")
    root = wal_archive_root(settings)
    if root is not None:
        await attempt("wal_archive", partial(wal_usage, root, settings.wal_retention_s))
    if url := urls.get("redis"):
        await attempt("stream", partial(_stream_at, url, settings.stream_maxlen))
    else:
        found.append("stream: redis is not running")
    if url := urls.get("mongo"):
        await attempt("archive", partial(_archive_at, url, settings.archive_retention_s, timeout_s))
    else:
        found.append("archive: mongo is not running")
    return found


async def _outbox_at(url: str, retention_s: float) -> StoreUsage:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await outbox_usage(conn, retention_s)
    finally:
        await engine.dispose()


async def _stream_at(url: str, maxlen: int) -> StoreUsage:
    redis = create_redis(url)
    try:
        return await stream_usage(redis, maxlen)
    finally:
        await redis.aclose()


async def _archive_at(url: str, retention_s: float | None, timeout_s: float) -> StoreUsage:
    async with open_documents(url, timeout_s=timeout_s, create_indexes=False) as documents:
        return await archive_usage(Archive(documents), retention_s)
