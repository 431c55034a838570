"""`post_transaction`: balanced, idempotent, never below zero, currencies kept apart."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import text

from azora_nexus.database.engine import Database, open_database
from azora_nexus.domain.ledger.accounts import system_account_id
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind
from azora_nexus.domain.ledger.postings import (
    PostedTransaction,
    Posting,
    check_balanced,
    post_transaction,
)
from azora_nexus.errors import Conflict, CurrencyMismatch, InsufficientFunds, NotFound
from azora_nexus.events.outbox import new_event
from tests.domain.ledger.ledger_helpers import WalletFactory, wallet_factory


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with open_database(database_url) as opened:
        yield opened


@pytest.fixture
def wallet(db: Database) -> WalletFactory:
    return wallet_factory(db)


async def balance(db: Database, wallet_id: uuid.UUID) -> Decimal:
    async with db.transaction() as session:
        value = (
            await session.execute(
                text("SELECT balance FROM wallets WHERE id = :id"), {"id": wallet_id}
            )
        ).scalar_one()
    assert isinstance(value, Decimal)
    return value


async def move(
    db: Database,
    source: uuid.UUID,
    target: uuid.UUID,
    amount: str,
    *,
    key: str = "k1",
    request_hash: str = "h1",
    currency: Currency = Currency.USD,
    target_currency: Currency | None = None,
) -> PostedTransaction:
    async with db.transaction() as session:
        return await post_transaction(
            session,
            kind=TransactionKind.TRANSFER,
            idempotency_key=key,
            request_hash=request_hash,
            postings=[
                Posting(currency, -Decimal(amount), wallet_id=source),
                Posting(target_currency or currency, Decimal(amount), wallet_id=target),
            ],
            memo="rent",
            created_by="tester",
            events=lambda tx_id: [
                new_event("system.alert", {"transactionId": str(tx_id)}, source="tests")
            ],
        )


async def test_posting_moves_balances_and_writes_postings(
    db: Database, wallet: WalletFactory
) -> None:
    source, target = await wallet(balance="10.00"), await wallet()
    posted = await move(db, source, target, "3.25")
    assert not posted.replayed
    assert posted.postings == (
        Posting(Currency.USD, Decimal("-3.25"), wallet_id=source),
        Posting(Currency.USD, Decimal("3.25"), wallet_id=target),
    )
    assert (await balance(db, source), await balance(db, target)) == (
        Decimal("6.75"),
        Decimal("3.25"),
    )
    async with db.transaction() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT wallet_id, amount FROM ledger_postings"
                    " WHERE transaction_id = :id ORDER BY id"
                ),
                {"id": posted.id},
            )
        ).all()
    assert [(r.wallet_id, r.amount) for r in rows] == [
        (source, Decimal("-3.25")),
        (target, Decimal("3.25")),
    ]


async def test_same_key_and_hash_twice_posts_once(db: Database, wallet: WalletFactory) -> None:
    source, target = await wallet(balance="10"), await wallet()
    first = await move(db, source, target, "10")
    second = await move(db, source, target, "10")
    assert second.replayed
    assert (second.id, second.postings, second.memo) == (first.id, first.postings, first.memo)
    assert await balance(db, source) == 0


async def test_same_key_other_hash_is_a_conflict(db: Database, wallet: WalletFactory) -> None:
    source, target = await wallet(balance="10"), await wallet()
    await move(db, source, target, "1")
    with pytest.raises(Conflict) as raised:
        await move(db, source, target, "2", request_hash="h2")
    assert type(raised.value) is Conflict
    assert await balance(db, source) == 9


async def test_overdraft_is_refused_and_changes_nothing(
    db: Database, wallet: WalletFactory
) -> None:
    source, target = await wallet(balance="1.00"), await wallet()
    with pytest.raises(InsufficientFunds):
        await move(db, source, target, "1.01")
    assert (await balance(db, source), await balance(db, target)) == (Decimal(1), Decimal(0))


async def test_currency_mismatch_is_refused(db: Database, wallet: WalletFactory) -> None:
    source, target = await wallet(balance="5"), await wallet(Currency.BTC)
    with pytest.raises(CurrencyMismatch):
        await move(db, source, target, "1")


async def test_unknown_account_is_not_found(db: Database, wallet: WalletFactory) -> None:
    source = await wallet(balance="5")
    with pytest.raises(NotFound):
        await move(db, source, uuid.uuid4(), "1")


def test_unbalanced_postings_are_a_bug() -> None:
    with pytest.raises(ValueError, match="sum to zero"):
        check_balanced([Posting(Currency.USD, Decimal(1), wallet_id=uuid.uuid4())])


async def outbox(db: Database) -> list[tuple[str, dict[str, str]]]:
    async with db.sessions() as session:
        rows = await session.execute(text("SELECT type, payload FROM outbox ORDER BY id"))
        return [(row.type, row.payload) for row in rows]


async def test_events_are_written_with_a_new_transaction_only(
    db: Database, wallet: WalletFactory
) -> None:
    source, target = await wallet(balance="5"), await wallet()
    before = await outbox(db)  # funding wrote none
    posted = await move(db, source, target, "2")
    await move(db, source, target, "2")  # a replay
    with pytest.raises(InsufficientFunds):
        await move(db, source, target, "9", key="k2")
    with pytest.raises(Conflict):
        await move(db, source, target, "1", request_hash="other")
    assert await outbox(db) == [*before, ("system.alert", {"transactionId": str(posted.id)})]


async def test_escrow_may_not_go_negative(db: Database, wallet: WalletFactory) -> None:
    target = await wallet()
    async with db.transaction() as session:
        escrow = await system_account_id(session, SystemAccountKind.ESCROW, Currency.USD)
    with pytest.raises(InsufficientFunds):
        async with db.transaction() as session:
            await post_transaction(
                session,
                kind=TransactionKind.ESCROW_RELEASE,
                idempotency_key="e1",
                request_hash="e1",
                postings=[
                    Posting(Currency.USD, Decimal(-1), system_account_id=escrow),
                    Posting(Currency.USD, Decimal(1), wallet_id=target),
                ],
            )
    assert await balance(db, target) == 0
