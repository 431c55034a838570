"""UBI jobs in one process: a key of the distribution posted before for another request
fails the job for good, with nothing of its batch kept; two workers on one job pay once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import text

from azora_nexus.database.engine import Database
from azora_nexus.domain.ledger.accounts import ensure_wallet, system_account_id
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind
from azora_nexus.domain.ledger.payouts import PayoutWorker
from azora_nexus.domain.ledger.postings import Posting, post_transaction
from azora_nexus.domain.ledger.schemas import DistributionPublic, UbiRequest
from azora_nexus.domain.ledger.ubi import get_distribution, start_distribution
from tests.domain.ledger.ledger_helpers import check_ledger, create_user, open_ledger_db
from tests.support.waiting import eventually

BODY = UbiRequest(currency=Currency.USD, amount_per_user="1.00", idempotency_key="jobs")


@pytest.fixture
async def db(database_url: str, redis_url: str) -> AsyncIterator[Database]:
    async with open_ledger_db(database_url, redis_url) as opened:
        yield opened


async def run_to_end(db: Database, job_id: uuid.UUID, workers: int = 1) -> DistributionPublic:
    tasks = [
        asyncio.create_task(PayoutWorker(db, lease_s=5, poll_s=0.05, batch_size=7).run())
        for _ in range(workers)
    ]

    async def ended() -> bool:
        async with db.sessions() as session:
            return (await get_distribution(session, job_id)).status != "running"

    try:
        await eventually(ended, timeout_s=20)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    async with db.sessions() as session:
        return await get_distribution(session, job_id)


async def count(db: Database, sql: str) -> int:
    async with db.sessions() as session:
        value = await session.scalar(text(sql))
    assert isinstance(value, int)
    return value


async def test_a_key_used_for_another_request_fails_the_job_and_keeps_nothing(
    db: Database,
) -> None:
    users = sorted([await create_user(db) for _ in range(5)])
    async with db.transaction() as session:  # the third user's key, taken by another amount
        wallet_id, _ = await ensure_wallet(session, users[2], Currency.USD)
        pool = await system_account_id(session, SystemAccountKind.UBI_POOL, Currency.USD)
        await post_transaction(
            session,
            kind=TransactionKind.UBI,
            idempotency_key=f"ubi:jobs:{users[2]}",
            request_hash="another request",
            postings=[
                Posting(Currency.USD, Decimal("-9"), system_account_id=pool),
                Posting(Currency.USD, Decimal("9"), wallet_id=wallet_id),
            ],
        )
    async with db.sessions() as session:
        job = await start_distribution(session, BODY, created_by="admin")

    done = await run_to_end(db, job.id)

    assert (done.status, done.paid, done.already_paid) == ("failed", 0, 0)
    assert done.error is not None
    assert "different request" in done.error
    assert await count(db, "SELECT count(*) FROM ledger_transactions") == 1  # batch undone
    assert await count(db, "SELECT count(*) FROM outbox WHERE type = 'finance.ubi.failed'") == 1
    assert await count(db, "SELECT count(*) FROM outbox WHERE type LIKE 'finance.ubi.d%'") == 0
    await check_ledger(db)


async def test_three_workers_on_one_job_pay_everyone_once(db: Database) -> None:
    users = [await create_user(db) for _ in range(60)]
    async with db.sessions() as session:
        job = await start_distribution(session, BODY, created_by="admin")

    done = await run_to_end(db, job.id, workers=3)

    assert (done.status, done.paid, done.already_paid) == ("completed", len(users), 0)
    credits = await count(
        db, "SELECT count(*) FROM ledger_postings WHERE wallet_id IS NOT NULL AND amount = 1"
    )
    assert credits == len(users)
    assert await count(db, "SELECT count(*) FROM outbox WHERE type = 'finance.ubi.completed'") == 1
    await check_ledger(db)
