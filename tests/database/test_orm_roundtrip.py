"""The models round-trip through asyncpg with the Python types the domain relies on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import selectinload

from azora_nexus.auth.tokens import Role
from azora_nexus.database.engine import Database, open_database
from azora_nexus.domain.education.models import Course, Lesson
from azora_nexus.domain.ledger.models import (
    Currency,
    LedgerPosting,
    LedgerTransaction,
    SystemAccount,
    SystemAccountKind,
    TransactionKind,
    Wallet,
)
from azora_nexus.domain.users.models import Profile, User
from azora_nexus.events.models import OutboxEvent

SMALLEST = Decimal("0.000000000000000001")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with open_database(database_url) as opened:
        yield opened


async def add_user(db: Database, name: str = "ada") -> User:
    async with db.transaction() as session:
        user = User(email=f"{name}@example.com", username=name, password_hash="hash")
        session.add(user)
    return user


async def test_new_user_gets_ids_defaults_and_timestamps_without_a_reload(db: Database) -> None:
    user = await add_user(db)
    assert isinstance(user.id, uuid.UUID)
    assert user.role is Role.USER
    assert user.is_active is True
    assert isinstance(user.created_at, datetime)
    assert user.created_at.tzinfo is not None


async def test_updated_at_is_refreshed_on_update_without_a_lazy_load(db: Database) -> None:
    user = await add_user(db)
    async with db.transaction() as session:
        # A later transaction, so now() moves on.
        loaded = await session.get_one(User, user.id)
        loaded.role = Role.ADMIN
        await session.flush()
        assert loaded.updated_at > user.updated_at
    async with db.sessions() as session:
        assert (await session.get_one(User, user.id)).role is Role.ADMIN


async def test_profile_loads_with_its_user(db: Database) -> None:
    user = await add_user(db)
    async with db.transaction() as session:
        session.add(Profile(user_id=user.id, display_name="Ada", location="Cape Town"))
    async with db.sessions() as session:
        loaded = await session.scalar(
            select(User).where(User.id == user.id).options(selectinload(User.profile))
        )
    assert loaded is not None
    assert loaded.profile is not None
    assert (loaded.profile.display_name, loaded.profile.location) == ("Ada", "Cape Town")


async def test_money_keeps_all_eighteen_decimals(db: Database) -> None:
    user = await add_user(db)
    amount = Decimal("12345678901234567890.123456789012345678")
    async with db.transaction() as session:
        pool = SystemAccount(kind=SystemAccountKind.MINING_POOL, currency=Currency.ETH)
        wallet = Wallet(user_id=user.id, currency=Currency.ETH, balance=amount)
        transaction = LedgerTransaction(
            kind=TransactionKind.MINING_REWARD, idempotency_key="reward-1", request_hash="h"
        )
        session.add_all([pool, wallet, transaction])
        await session.flush()
        session.add_all(
            [
                LedgerPosting(
                    transaction_id=transaction.id,
                    wallet_id=wallet.id,
                    currency=Currency.ETH,
                    amount=SMALLEST,
                ),
                LedgerPosting(
                    transaction_id=transaction.id,
                    system_account_id=pool.id,
                    currency=Currency.ETH,
                    amount=-SMALLEST,
                ),
            ]
        )
    async with db.sessions() as session:
        stored = await session.get_one(Wallet, wallet.id)
        loaded = await session.scalar(
            select(LedgerTransaction)
            .where(LedgerTransaction.id == transaction.id)
            .options(selectinload(LedgerTransaction.postings))
        )
    assert stored.balance == amount
    assert stored.currency is Currency.ETH
    assert loaded is not None
    assert [posting.amount for posting in loaded.postings] == [SMALLEST, -SMALLEST]
    assert sum(posting.amount for posting in loaded.postings) == 0


async def test_unknown_currency_is_refused_before_the_database(db: Database) -> None:
    user = await add_user(db)
    with pytest.raises(StatementError, match="XYZ"):
        async with db.transaction() as session:
            session.add(Wallet(user_id=user.id, currency="XYZ"))


async def test_course_lessons_come_back_in_position_order(db: Database) -> None:
    async with db.transaction() as session:
        course = Course(
            title="Ledgers",
            lessons=[Lesson(position=p, title=f"lesson {p}") for p in (2, 0, 1)],
        )
        session.add(course)
    async with db.sessions() as session:
        loaded = await session.scalar(
            select(Course).where(Course.id == course.id).options(selectinload(Course.lessons))
        )
    assert loaded is not None
    assert [lesson.title for lesson in loaded.lessons] == ["lesson 0", "lesson 1", "lesson 2"]
    assert loaded.description == ""


async def test_outbox_rows_are_numbered_in_insert_order_and_start_unpublished(
    db: Database,
) -> None:
    async with db.transaction() as session:
        events = [
            OutboxEvent(
                type="system.alert",
                payload={"n": n, "amount": "1.50"},
                source="test",
                timestamp_ms=1_732_300_000_000 + n,
            )
            for n in range(3)
        ]
        session.add_all(events)
    ids = [event.id for event in events]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    async with db.transaction() as session:
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id == ids[0]).values(stream_id="1-0")
        )
        unpublished = await session.scalars(
            select(OutboxEvent.id)
            .where(OutboxEvent.published_at.is_(None))
            .order_by(OutboxEvent.id)
        )
        assert list(unpublished) == ids
        first = await session.get_one(OutboxEvent, ids[0])
    assert first.payload == {"n": 0, "amount": "1.50"}
    assert (first.stream_id, first.user_id, first.published_at) == ("1-0", None, None)
