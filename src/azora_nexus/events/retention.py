"""Retention: the outbox kept to `AZORA_OUTBOX_RETENTION_S`, the archive to
`AZORA_ARCHIVE_RETENTION_S`, by one node at a time (a PostgreSQL advisory lock per round).

The outbox is partitioned by time (database/partitions.py): each round makes the next
partitions ahead of the clock and drops those whose rows are all older than the
retention, published and archived. Published means none is left in the relay's partial
index. Archived is asked of the archive itself, by event id: the archiver's consumer group
would also count an entry the stream trimmed before it was archived, and an outbox row is
then the event's last copy. An event older than what the archive keeps counts as archived
(it would be removed from there at once). A row that is not both stays, with its whole
partition, however old: nothing unpublished or unarchived is ever dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from azora_nexus.database.partitions import Partition, clock_s, create_ahead, drop, partitions
from azora_nexus.events.archive import Archive
from azora_nexus.events.envelope import parse_event_id
from azora_nexus.events.models import OUTBOX_TABLE
from azora_nexus.events.relay import asyncpg_dsn
from azora_nexus.guard import log_failure

logger = logging.getLogger(__name__)

RETENTION_LOCK_KEY = 0x417A6F7252  # "AzoR"
DAY_S = 86_400
CHECK_BATCH = 5000


def partition_width_s(retention_s: float) -> int:
    """A quarter of the retention (at least 1 s, at most a day): a row outlives its
    retention by at most one width."""
    return max(1, min(DAY_S, int(retention_s // 4)))


@dataclass(frozen=True)
class Verified:
    """What a partition held when every row in it was found published and archived."""

    rows: int
    max_id: int | None  # None: it was empty


class Retention:
    """Keeps the outbox and the archive within their retention while its task lives."""

    def __init__(
        self,
        database_url: str,
        archive: Archive,
        *,
        outbox_retention_s: float,
        archive_retention_s: float | None,
    ) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.archive = archive
        self.outbox_retention_s = outbox_retention_s
        self.archive_retention_s = archive_retention_s
        self.width_s = partition_width_s(outbox_retention_s)
        self.ahead_s = max(3 * self.width_s, 10)
        self.tick_s = min(30.0, max(0.5, self.width_s / 2))

    async def run(self) -> None:
        """A round every `tick_s`; a failed round is logged and tried again next tick."""
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(logger, "retention", exc, self.tick_s)
            await asyncio.sleep(self.tick_s)

    async def round(self) -> bool:
        """One round, if no other node is doing one; whether this node did it."""
        conn = await asyncpg.connect(self.dsn, timeout=10)
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK_KEY):
                return False
            made = await create_ahead(
                conn, OUTBOX_TABLE, width_s=self.width_s, ahead_s=self.ahead_s
            )
            if made:
                logger.debug("outbox: partitions %s made", made)
            await self.drop_expired(conn)
            if self.archive_retention_s is not None:
                cutoff_ms = int((time.time() - self.archive_retention_s) * 1000)
                removed = await self.archive.expire_before(cutoff_ms)
                if removed:
                    logger.info("archive: %d events older than the retention removed", removed)
            return True
        finally:
            await asyncio.shield(conn.close(timeout=2))

    async def drop_expired(self, conn: asyncpg.Connection) -> int:
        """Drop every outbox partition retention allows; how many went."""
        cutoff_s = await clock_s(conn) - self.outbox_retention_s
        dropped = 0
        for partition in await partitions(conn, OUTBOX_TABLE):
            if partition.end_s is not None and partition.end_s > cutoff_s:
                continue
            verified = await self._verify(conn, partition, cutoff_s)
            if verified is None:
                continue
            try:
                done = await drop(conn, OUTBOX_TABLE, partition, _unchanged(partition, verified))
            except asyncpg.LockNotAvailableError:
                logger.info("outbox: %s is busy; dropping it next round", partition.name)
                continue
            if done:
                dropped += 1
                logger.info("outbox: %s dropped (%d rows)", partition.name, verified.rows)
        return dropped

    async def _verify(
        self, conn: asyncpg.Connection, partition: Partition, cutoff_s: float
    ) -> Verified | None:
        """What the partition holds, if every row may go; None while one must stay."""
        name = partition.name
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE published_at IS NULL)"):
            return None
        if partition.is_default:
            newest = await conn.fetchval(
                f"SELECT extract(epoch FROM max(created_at))::float8 FROM {name}"
            )
            if newest is None or newest > cutoff_s:
                return None
        removed = await self.archive.removed_through()
        rows, last_id = 0, 0
        while True:
            batch = await conn.fetch(
                f"SELECT id, stream_id FROM {name} WHERE id > $1 ORDER BY id LIMIT $2",
                last_id,
                CHECK_BATCH,
            )
            if not batch:
                break
            missing = await self.archive.missing([row["stream_id"] for row in batch])
            unarchived = [i for i in missing if removed is None or parse_event_id(i) > removed]
            if unarchived:
                logger.warning(
                    "outbox: %s keeps %d published events the archive does not hold (first %s)",
                    name,
                    len(unarchived),
                    unarchived[0],
                )
                return None
            rows += len(batch)
            last_id = batch[-1]["id"]
        return Verified(rows, last_id if rows else None)


def _unchanged(
    partition: Partition, verified: Verified
) -> Callable[[asyncpg.Connection], Awaitable[bool]]:
    """The check, under the table's lock, that nothing came in since `verified`.

    A range of the past receives no rows (they are stamped with the insert's own clock),
    so its newest id tells; the default partition takes rows at any time, so it is counted.
    """
    name = partition.name

    async def check(conn: asyncpg.Connection) -> bool:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE published_at IS NULL)"):
            return False
        if partition.is_default:
            rows, max_id = await conn.fetchrow(f"SELECT count(*), max(id) FROM {name}")
            return bool(rows == verified.rows and max_id == verified.max_id)
        return bool(await conn.fetchval(f"SELECT max(id) FROM {name}") == verified.max_id)

    return check
