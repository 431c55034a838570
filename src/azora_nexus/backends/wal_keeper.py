"""`keep_wal`: base backups on a schedule and the archive pruned to its retention window."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from azora_nexus.backends.postgres import EmbeddedPostgres
from azora_nexus.backends.wal import Base

logger = logging.getLogger(__name__)

MAX_TICK_S = 60.0


async def take_base_and_prune(server: EmbeddedPostgres, port: int, retention_s: float) -> Base:
    """A new online base of `server` running on `port`, then everything the window no longer
    needs dropped; returns the new base."""
    assert server.bin is not None
    archive = server.archive
    base = await asyncio.to_thread(archive.take_online_base, server.bin, port, server.password())
    bases, segments = await asyncio.to_thread(archive.prune, retention_s)
    logger.info(
        "postgres: base backup %s taken; pruned %d old bases and %d WAL segments",
        base.path.name,
        bases,
        segments,
    )
    return base


async def tend(server: EmbeddedPostgres, interval_s: float, retention_s: float) -> None:
    """Take a base when the newest is `interval_s` old, and prune."""
    bases = server.archive.bases()
    if not bases or time.time() - bases[-1].taken_at >= interval_s:
        await take_base_and_prune(server, server.port, retention_s)


@contextlib.asynccontextmanager
async def keep_wal(
    server: EmbeddedPostgres, interval_s: float, retention_s: float
) -> AsyncIterator[None]:
    """Tend the archive of the running `server` in the background while the block runs."""

    async def loop() -> None:
        tick_s = min(MAX_TICK_S, interval_s / 4)
        while True:
            try:
                await tend(server, interval_s, retention_s)
            except Exception:  # a failed base or prune is retried next tick; never fatal
                logger.exception("postgres: tending the WAL archive failed")
            await asyncio.sleep(tick_s)

    task = asyncio.create_task(loop(), name="wal keeper")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
