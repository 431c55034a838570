"""Erasures whose traces outside PostgreSQL are still to go (`erasure_traces`), finished
whatever fails on the way.

The erasing transaction records the work (`record_pending`); the request then does it
(`finish_traces`) under the row's lock and deletes the row when the traces are gone. If
Redis, MongoDB or the node fails meanwhile (a Redis killed in the middle of the stream's
compaction, say), the row stays and every node's `keep_finishing` takes it up once the
backends answer again: the erased user's events do not stay in the archive, nor their
bytes in Redis's memory and AOF. Each step of the scrub is safe to run again (a deleted
entry is not found twice; a compaction starts from a fresh scratch copy and swaps only a
complete one), and the row lock keeps two nodes from running the same one at once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.domain.privacy.identity import Subject, Tombstone
from azora_nexus.domain.privacy.models import PendingTraces
from azora_nexus.domain.privacy.rows import Erased
from azora_nexus.domain.privacy.traces import TraceStores, rewrite_aof, scrub_traces
from azora_nexus.guard import log_failure

logger = logging.getLogger(__name__)

# A row younger than this may be the one its own request is about to lock: left to it.
GRACE_S = 5.0
CHECK_S = 5.0


def record_pending(session: AsyncSession, erased: Erased, since: datetime) -> None:
    """The traces of `erased` are to be removed: recorded in the erasing transaction."""
    tomb, subject = erased.tombstone, erased.subject
    session.add(
        PendingTraces(
            tombstone_id=tomb.id,
            tombstone_username=tomb.username,
            tombstone_email=tomb.email,
            subject_id=subject.id,
            subject_email=subject.email,
            subject_username=subject.username,
            wallet_ids=sorted(subject.wallet_ids),
            since=since,
        )
    )


async def _finish(
    stores: TraceStores,
    session: AsyncSession,
    row: PendingTraces,
    *,
    rewrite: bool = True,
    retry: bool = False,
) -> None:
    subject = Subject(
        id=row.subject_id,
        email=row.subject_email,
        username=row.subject_username,
        wallet_ids=frozenset(row.wallet_ids),
    )
    tomb = Tombstone(
        id=row.tombstone_id, username=row.tombstone_username, email=row.tombstone_email
    )
    await scrub_traces(stores, subject, tomb, since=row.since, retry=retry)
    if rewrite:
        await rewrite_aof(stores)
    await session.execute(
        delete(PendingTraces).where(PendingTraces.tombstone_id == row.tombstone_id)
    )


async def finish_traces(
    stores: TraceStores, tombstone_id: uuid.UUID, *, rewrite: bool = True
) -> None:
    """Remove the traces of the erasure recorded under `tombstone_id`, now (without the AOF
    rewrite when `rewrite` is false: the caller does one for a batch); if another node is at
    it, wait until it is done (or failed, then do it here). Raises what the backends raise,
    leaving the row for `keep_finishing`."""
    async with stores.db.transaction() as session:
        query = select(PendingTraces).where(PendingTraces.tombstone_id == tombstone_id)
        row = await session.scalar(query.with_for_update())
        if row is not None:
            await _finish(stores, session, row, rewrite=rewrite)


async def finish_pending(stores: TraceStores, *, grace_s: float = GRACE_S) -> int:
    """Finish every recorded erasure older than `grace_s` that no one is at; how many."""
    done = 0
    while True:
        async with stores.db.transaction() as session:
            cutoff = func.now() - timedelta(seconds=grace_s)
            query = (
                select(PendingTraces)
                .where(PendingTraces.erased_at <= cutoff)
                .order_by(PendingTraces.erased_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            row = await session.scalar(query)
            if row is None:
                return done
            await _finish(stores, session, row, retry=True)
        done += 1


async def keep_finishing(stores: TraceStores, *, check_s: float = CHECK_S) -> None:
    """Now and then, finish the erasures whose traces a failure left behind."""
    while True:
        try:
            done = await finish_pending(stores)
            if done:
                logger.warning("erasure: the traces of %d interrupted erasures removed", done)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_failure(logger, "erasure: removing traces left by a failure", exc, check_s)
        await asyncio.sleep(check_s)
