"""A UBI job's worker cancelled midway, the job resumed by another worker: every active
user paid exactly once, the job's counts exact, the ledger exact."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import text

from azora_nexus.database.engine import Database
from azora_nexus.domain.ledger.models import Currency
from azora_nexus.domain.ledger.payouts import PayoutWorker
from azora_nexus.domain.ledger.schemas import DistributionPublic, UbiRequest
from azora_nexus.domain.ledger.ubi import get_distribution, start_distribution
from tests.domain.ledger.ledger_helpers import check_ledger, open_ledger_db
from tests.support.waiting import eventually

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow

USERS = 300
INACTIVE = 7
BATCH = 10
LEASE_S = 0.5
BODY = UbiRequest(currency=Currency.ETH, amount_per_user="0.25", idempotency_key="ubi-crash")


@pytest.fixture
async def db(database_url: str, redis_url: str) -> AsyncIterator[Database]:
    async with open_ledger_db(database_url, redis_url) as opened:
        yield opened


async def add_users(db: Database) -> None:
    ids = [uuid.uuid4() for _ in range(USERS + INACTIVE)]
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO users (id, email, username, password_hash, is_active) "
                "SELECT id, id::text || '@example.com', id::text, 'x', n > :inactive "
                "FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS u(id, n)"
            ),
            {"ids": ids, "inactive": INACTIVE},
        )


async def ubi_postings(db: Database) -> int:
    async with db.sessions() as session:
        count = await session.scalar(
            text(
                "SELECT count(*) FROM ledger_postings p JOIN ledger_transactions t"
                " ON t.id = p.transaction_id WHERE t.kind = 'ubi' AND p.wallet_id IS NOT NULL"
            )
        )
    assert isinstance(count, int)
    return count


async def distribution(db: Database, distribution_id: uuid.UUID) -> DistributionPublic:
    async with db.sessions() as session:
        return await get_distribution(session, distribution_id)


def worker(db: Database) -> PayoutWorker:
    return PayoutWorker(db, lease_s=LEASE_S, poll_s=0.05, batch_size=BATCH)


async def test_ubi_cancelled_midway_then_resumed_pays_everyone_once(db: Database) -> None:
    await add_users(db)
    async with db.sessions() as session:
        job = await start_distribution(session, BODY, created_by="admin")
    first = asyncio.create_task(worker(db).run())
    paid = 0
    async with asyncio.timeout(60):
        while paid < 3 * BATCH:  # a few batches in: cut it off
            await asyncio.sleep(0.005)
            paid = await ubi_postings(db)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    paid_before = await ubi_postings(db)
    assert 0 < paid_before < USERS, "the run was not cut off midway"
    cut = await distribution(db, job.id)
    # The counts moved with the batches that committed, and only with them.
    assert (cut.status, cut.paid, cut.already_paid) == ("running", paid_before, 0)

    second = asyncio.create_task(worker(db).run())  # takes over once the lease has run out

    async def finished() -> bool:
        return (await distribution(db, job.id)).status != "running"

    try:
        await eventually(finished, timeout_s=60)
    finally:
        second.cancel()
    done = await distribution(db, job.id)
    assert (done.status, done.paid, done.already_paid, done.total_users) == (
        "completed",
        USERS,
        0,
        USERS,
    )
    async with db.sessions() as session:
        per_user = (
            await session.execute(
                text(
                    """
                    SELECT u.is_active, w.balance, count(p.id) AS credits
                    FROM users u
                    LEFT JOIN wallets w ON w.user_id = u.id AND w.currency = 'ETH'
                    LEFT JOIN ledger_postings p ON p.wallet_id = w.id
                    GROUP BY u.id, u.is_active, w.balance
                    """
                )
            )
        ).all()
    active = [row for row in per_user if row.is_active]
    assert len(active) == USERS
    assert all(row.credits == 1 and row.balance == Decimal("0.25") for row in active)
    assert all(row.credits == 0 and row.balance is None for row in per_user if not row.is_active)
    await check_ledger(db)
