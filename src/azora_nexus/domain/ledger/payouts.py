"""The payout worker: one per node process, working distributions until none is left.

A worker claims a running distribution nobody holds (or whose holder's claim is older
than the lease: its node died), pays it batch after batch (ubi.pay_next_batch), each batch
renewing the claim, and closes it. Many workers on many nodes share the jobs through the
database alone: a claim is one UPDATE that skips locked rows, and every batch checks
the claim under the job row's lock, so two workers never pay the same job at once.
`wake()` starts the local worker at once (after a POST); the others look every poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from azora_nexus.database.engine import Database
from azora_nexus.domain.ledger import payout_sql, ubi
from azora_nexus.domain.ledger.models import Currency, DistributionStatus
from azora_nexus.errors import Conflict, NexusError

logger = logging.getLogger(__name__)

# PostgreSQL's numeric_value_out_of_range: the pool's balance past NUMERIC(38, 18).
_OUT_OF_RANGE = "22003"
PROGRESS_EVERY_S = 1.0


class PayoutWorker:
    """Claims and pays distributions until cancelled."""

    def __init__(self, db: Database, *, lease_s: float, poll_s: float, batch_size: int) -> None:
        self.db = db
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.batch_size = batch_size
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for work now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()  # before looking: a wake() from now on is not missed
            try:
                job = await self.claim()
            except (SQLAlchemyError, OSError) as exc:
                logger.warning("payout worker could not look for work: %r", exc)
                job = None
            if job is not None:
                await self.work(job)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def claim(self) -> ubi.Job | None:
        """A distribution this worker now holds, or None when there is nothing to do."""
        token = f"{self.name}:{uuid.uuid4()}"
        async with self.db.transaction() as session:
            row = (
                await session.execute(payout_sql.CLAIM, {"token": token, "lease_s": self.lease_s})
            ).one_or_none()
        if row is None:
            return None
        run = ubi.Distribution(
            key=row.idempotency_key,
            currency=Currency(row.currency),
            amount=row.amount_per_user,
            created_by=row.created_by,
        )
        if run.request_hash != row.request_hash:  # never: the hash is made from these fields
            raise RuntimeError(f"distribution {row.id} does not match its own request")
        return ubi.Job(id=row.id, run=run, token=token, total_users=row.total_users)

    async def work(self, job: ubi.Job) -> None:
        """Pay `job` to the end, or until its claim is lost or a batch fails."""
        logger.info("paying distribution %s (%s)", job.id, job.run.key)
        announced = time.monotonic()
        try:
            while True:
                async with self.db.sessions() as session:
                    batch = await ubi.pay_next_batch(session, job, self.batch_size)
                if not batch.held or batch.finished:
                    return
                if time.monotonic() - announced >= PROGRESS_EVERY_S:
                    announced = time.monotonic()
                    async with self.db.sessions() as session:
                        await ubi.announce_progress(session, job, batch)
        except (Conflict, DBAPIError) as exc:
            if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) != _OUT_OF_RANGE:
                await self._let_go(job, exc)
                return
            await self._fail(job, str(exc) if isinstance(exc, NexusError) else "pool out of range")
        except (SQLAlchemyError, OSError) as exc:
            await self._let_go(job, exc)

    async def _fail(self, job: ubi.Job, error: str) -> None:
        """The job cannot go on (a request clash, an overflow): failed, for good."""
        logger.error("distribution %s failed: %s", job.id, error)
        async with self.db.sessions() as session, session.begin():
            await ubi.finish(session, job, DistributionStatus.FAILED, error)

    async def _let_go(self, job: ubi.Job, exc: BaseException) -> None:
        """A passing failure (a backend away): hand the job back, to be claimed again."""
        logger.warning("distribution %s paused: %r", job.id, exc)
        try:
            async with self.db.transaction() as session:
                await session.execute(payout_sql.RELEASE, {"id": job.id, "token": job.token})
        except (SQLAlchemyError, OSError):
            pass  # the lease runs out on its own
        await asyncio.sleep(self.poll_s)
