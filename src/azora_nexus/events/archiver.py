"""The archiver: a Redis consumer group that copies every stream entry into the archive.

Entries are acknowledged only once archived, so an archiver that dies leaves them
pending; another node's archiver claims entries left idle for `stale_ms` (XAUTOCLAIM),
and nothing is skipped across restarts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from azora_nexus.events.archive import Archive
from azora_nexus.events.stream import ARCHIVE_GROUP, STREAM_KEY, decode_entries
from azora_nexus.guard import log_failure

logger = logging.getLogger(__name__)

GROUP = ARCHIVE_GROUP  # the stream is never trimmed past what it has not acknowledged


def consumer_name() -> str:
    """A name unique to this node's process."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Archiver:
    """Archives the stream in batches for as long as its task lives."""

    def __init__(
        self,
        redis: Redis,
        archive: Archive,
        *,
        key: str = STREAM_KEY,
        batch_size: int = 500,
        block_ms: int = 1000,
        stale_ms: int = 30_000,
        claim_every_s: float = 10.0,
        retry_s: float = 1.0,
    ) -> None:
        self.redis = redis
        self.archive = archive
        self.key = key
        self.consumer = consumer_name()
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.stale_ms = stale_ms
        self.claim_every_s = claim_every_s
        self.retry_s = retry_s

    async def run(self) -> None:
        """Archive forever; on failure log, back off, and re-read what is still pending."""
        indexed = False
        pending_first = True
        next_claim = 0.0
        while True:
            try:
                if not indexed:
                    await self.archive.create_indexes()
                    await self.archive.backfill_audience()
                    indexed = True
                if pending_first:
                    await self.ensure_group()
                    await self._drain("0")
                    pending_first = False
                if time.monotonic() >= next_claim:
                    await self._claim_stale()
                    next_claim = time.monotonic() + self.claim_every_s
                await self._archive_batch(">", block_ms=self.block_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(logger, "archiver", exc, self.retry_s)
                pending_first = True
                await asyncio.sleep(self.retry_s)

    async def ensure_group(self) -> None:
        """The consumer group exists, reading the stream from its very first entry."""
        try:
            await self.redis.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _drain(self, start: str) -> None:
        """Archive this consumer's own pending entries (left by a failure)."""
        while await self._archive_batch(start, block_ms=None) == self.batch_size:
            pass

    async def _claim_stale(self) -> None:
        """Take over entries that a dead node's archiver read but never acknowledged."""
        start = "0-0"
        while True:
            reply: Any = await self.redis.xautoclaim(
                self.key, GROUP, self.consumer, self.stale_ms, start, count=self.batch_size
            )
            start, entries = reply[0], reply[1]
            await self._store_and_ack(entries)
            if not entries or start in (b"0-0", "0-0"):
                return

    async def _archive_batch(self, start: str, *, block_ms: int | None) -> int:
        reply: Any = await self.redis.xreadgroup(
            GROUP, self.consumer, {self.key: start}, count=self.batch_size, block=block_ms
        )
        if not reply:
            return 0
        entries = reply[0][1]
        await self._store_and_ack(entries)
        return len(entries)

    async def _store_and_ack(self, entries: list[Any]) -> None:
        if not entries:
            return
        await self.archive.store(decode_entries(entries))
        await self.redis.xack(self.key, GROUP, *[entry_id for entry_id, _ in entries])
