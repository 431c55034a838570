"""Group commit: a lone transfer does not wait; a batch decides each transfer in arrival
order, refuses one that would overdraw alone, and a batch failing as a whole is posted
again transfer by transfer, each caller with its own outcome."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest
from sqlalchemy import text

from azora_nexus.auth.tokens import Principal, Role
from azora_nexus.database.engine import Database
from azora_nexus.domain.ledger.accounts import system_account_id
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind
from azora_nexus.domain.ledger.postings import Posting, post_transaction
from azora_nexus.domain.ledger.schemas import TransactionPublic, TransferRequest
from azora_nexus.domain.ledger.transfers import transfer
from azora_nexus.errors import InsufficientFunds, Invalid
from azora_nexus.events.relay import asyncpg_dsn
from tests.domain.ledger.ledger_helpers import (
    check_ledger,
    group_commit,
    open_ledger_db,
    wallet_factory,
)
from tests.support.waiting import eventually

ADMIN = Principal(user_id="admin", role=Role.ADMIN)
LONG_WINDOW_S = 5.0


@pytest.fixture
async def db(database_url: str, redis_url: str) -> AsyncIterator[Database]:
    # A window far longer than any transfer: waiting for it would show. One batch in
    # flight: the next batch is exactly what queued while it was written.
    async with open_ledger_db(
        database_url, redis_url, window_s=LONG_WINDOW_S, in_flight=1
    ) as opened:
        yield opened


def body(source: uuid.UUID, target: uuid.UUID, amount: str) -> TransferRequest:
    return TransferRequest(
        from_wallet_id=source, to_wallet_id=target, amount=amount, idempotency_key=str(uuid.uuid4())
    )


async def send(db: Database, request: TransferRequest) -> TransactionPublic:
    return await transfer(db.sessions, request, actor=ADMIN)


async def balances(db: Database, wallets: list[uuid.UUID]) -> list[Decimal]:
    async with db.sessions() as session:
        rows: dict[uuid.UUID, Decimal] = dict(
            (
                await session.execute(
                    text("SELECT id, balance FROM wallets WHERE id = ANY(:ids)"), {"ids": wallets}
                )
            ).all()
        )
    return [rows[w] for w in wallets]


async def test_a_lone_transfer_does_not_wait_for_a_window(db: Database) -> None:
    make = wallet_factory(db)
    source, target = await make(Currency.USD, "10.00"), await make(Currency.USD)
    for _ in range(3):
        started = time.monotonic()
        await send(db, body(source, target, "1.00"))
        assert time.monotonic() - started < LONG_WINDOW_S / 5
    assert group_commit(db).batches == 3
    assert await balances(db, [source, target]) == [Decimal("7.00"), Decimal("3.00")]


async def queue_behind_a_locked_wallet(
    db: Database, locked: uuid.UUID, other: uuid.UUID, requests: list[TransferRequest]
) -> tuple[list[TransactionPublic | BaseException], uuid.UUID]:
    """Start a transfer on `locked` (its batch then waits on the row lock another connection
    holds), queue `requests` behind it in this order, release the lock: the requests are
    the next batch. Their outcomes, and the id of the first (blocked) transfer."""
    conn = await asyncpg.connect(asyncpg_dsn(db.engine.url.render_as_string(hide_password=False)))
    try:
        holding = conn.transaction()
        await holding.start()
        await conn.execute("SELECT 1 FROM wallets WHERE id = $1 FOR UPDATE", locked)
        committer = group_commit(db)
        first = asyncio.create_task(send(db, body(locked, other, "1.00")))

        async def queued(count: int) -> bool:
            return committer.queued == count

        await eventually(lambda: queued(0))  # the first one's batch is under way
        await asyncio.sleep(0.05)
        tasks = []
        for n, request in enumerate(requests, start=1):
            tasks.append(asyncio.create_task(send(db, request)))
            await eventually(lambda n=n: queued(n))  # type: ignore[misc]
        await holding.rollback()
        blocked = await first
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await conn.close()
    return list(outcomes), blocked.id


async def created_at(db: Database, ids: list[uuid.UUID]) -> set[object]:
    """When each transaction's database transaction began (one value: one transaction)."""
    async with db.sessions() as session:
        rows = await session.execute(
            text("SELECT created_at FROM ledger_transactions WHERE id = ANY(:ids)"), {"ids": ids}
        )
        return {row.created_at for row in rows}


async def test_a_batch_decides_in_arrival_order_and_refuses_an_overdraw_alone(
    db: Database,
) -> None:
    make = wallet_factory(db)
    a, b, c = await make(Currency.USD, "100.00"), await make(Currency.USD), await make(Currency.USD)
    locked, other = await make(Currency.USD, "5.00"), await make(Currency.USD)
    requests = [
        body(a, b, "80.00"),  # a 20, b 80
        body(a, c, "30.00"),  # refused: a has 20
        body(b, c, "50.00"),  # possible only after the first, in the same batch: b 30, c 50
        body(c, a, "50.00"),  # c 0, a 70
        body(a, b, "70.00"),  # a 0, b 100
    ]
    batches_before = group_commit(db).batches
    outcomes, _ = await queue_behind_a_locked_wallet(db, locked, other, requests)

    assert isinstance(outcomes[1], InsufficientFunds)
    posted = [o for n, o in enumerate(outcomes) if n != 1]
    assert all(isinstance(o, TransactionPublic) for o in posted), outcomes
    assert [o.idempotency_key for o in posted if isinstance(o, TransactionPublic)] == [
        r.idempotency_key for n, r in enumerate(requests) if n != 1
    ]
    # The blocked transfer's batch, then one batch (one transaction) for the five.
    assert group_commit(db).batches == batches_before + 2
    assert (
        len(await created_at(db, [o.id for o in posted if isinstance(o, TransactionPublic)])) == 1
    )
    assert await balances(db, [a, b, c]) == [Decimal("0.00"), Decimal("100.00"), Decimal("0.00")]
    await check_ledger(db)
    async with db.sessions() as session:
        events = await session.scalar(
            text("SELECT count(*) FROM outbox WHERE type = 'finance.transaction.completed'")
        )
    assert events == 2 * (len(posted) + 1)


async def fund_from(db: Database, wallet: uuid.UUID, kind: SystemAccountKind, amount: str) -> None:
    async with db.transaction() as session:
        pool = await system_account_id(session, kind, Currency.AZR)
        await post_transaction(
            session,
            kind=TransactionKind.MINING_REWARD,
            idempotency_key=f"fund:{uuid.uuid4()}",
            request_hash="fund",
            postings=[
                Posting(Currency.AZR, -Decimal(amount), system_account_id=pool),
                Posting(Currency.AZR, Decimal(amount), wallet_id=wallet),
            ],
        )


async def test_a_batch_failing_as_a_whole_is_posted_again_transfer_by_transfer(
    db: Database,
) -> None:
    make = wallet_factory(db)
    # A balance at the top of NUMERIC(38, 18): one more AZR takes it out of range, which
    # fails the whole statement (not a refusal the batch can make for one transfer).
    full, giver = await make(Currency.AZR), await make(Currency.AZR)
    await fund_from(db, full, SystemAccountKind.MINING_POOL, "99999999999999999999")
    await fund_from(db, giver, SystemAccountKind.UBI_POOL, "5")
    a, b = await make(Currency.USD, "50.00"), await make(Currency.USD)
    locked, other = await make(Currency.USD, "5.00"), await make(Currency.USD)
    requests = [
        body(a, b, "10.00"),
        body(giver, full, "1"),
        body(a, b, "20.00"),
        body(b, a, "5.00"),
    ]
    batches_before = group_commit(db).batches
    outcomes, _ = await queue_behind_a_locked_wallet(db, locked, other, requests)

    assert isinstance(outcomes[1], Invalid), outcomes
    neighbours = [o for n, o in enumerate(outcomes) if n != 1]
    assert all(isinstance(o, TransactionPublic) for o in neighbours), outcomes
    # The failed batch wrote nothing; each neighbour was posted alone, in a transaction of
    # its own.
    assert group_commit(db).batches == batches_before + 1
    ids = [o.id for o in neighbours if isinstance(o, TransactionPublic)]
    assert len(await created_at(db, ids)) == len(ids)
    assert await balances(db, [a, b, giver, full]) == [
        Decimal("25.00"),
        Decimal("25.00"),
        Decimal("5"),
        Decimal("99999999999999999999"),
    ]
    await check_ledger(db)
