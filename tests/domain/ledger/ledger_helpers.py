"""Helpers for ledger tests: users to own wallets, and money to fill them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from azora_nexus.cache.cache import open_cache
from azora_nexus.database.engine import Database, create_engine
from azora_nexus.domain.ledger.accounts import ensure_wallet, system_account_id
from azora_nexus.domain.ledger.group_commit import (
    COMMITTER_INFO,
    GroupCommit,
    bind_group_commit,
)
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind
from azora_nexus.domain.ledger.postings import Posting, post_transaction
from azora_nexus.sync import bind_cache

WalletFactory = Callable[..., Awaitable[uuid.UUID]]


async def create_user(db: Database, name: str | None = None) -> uuid.UUID:
    """A user row (no password that anyone could use), for tests that need an owner."""
    user_id = uuid.uuid4()
    name = name or f"u{user_id.hex[:12]}"
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO users (id, email, username, password_hash) "
                "VALUES (:id, :email, :username, 'x')"
            ),
            {"id": user_id, "email": f"{name}@example.com", "username": name},
        )
    return user_id


async def fund(db: Database, wallet_id: uuid.UUID, currency: Currency, amount: Decimal) -> None:
    """Credit `wallet_id` from the mining pool."""
    async with db.transaction() as session:
        pool = await system_account_id(session, SystemAccountKind.MINING_POOL, currency)
        await post_transaction(
            session,
            kind=TransactionKind.MINING_REWARD,
            idempotency_key=f"fund:{uuid.uuid4()}",
            request_hash="fund",
            postings=[
                Posting(currency, -amount, system_account_id=pool),
                Posting(currency, amount, wallet_id=wallet_id),
            ],
        )


def wallet_factory(db: Database) -> WalletFactory:
    """`await create(currency, balance)`: a new user's wallet holding `balance`."""

    async def create(currency: Currency = Currency.USD, balance: str = "0") -> uuid.UUID:
        user_id = await create_user(db)
        async with db.transaction() as session:
            wallet_id, _ = await ensure_wallet(session, user_id, currency)
        if Decimal(balance) > 0:
            await fund(db, wallet_id, currency, Decimal(balance))
        return wallet_id

    return create


@asynccontextmanager
async def open_ledger_db(
    database_url: str,
    redis_url: str,
    *,
    pool_size: int = 20,
    window_s: float = 0.0005,
    max_batch: int = 128,
    in_flight: int = 2,
) -> AsyncIterator[Database]:
    """A database whose sessions invalidate through a cache and group-commit transfers,
    as the app's do."""
    engine = create_engine(database_url, pool_size=pool_size)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with open_cache(redis_url) as cache:
            bind_cache(sessions, cache)
            committer = GroupCommit(
                engine, cache, window_s=window_s, max_batch=max_batch, in_flight=in_flight
            )
            bind_group_commit(sessions, committer)
            yield Database(engine=engine, sessions=sessions)
            await committer.aclose()
    finally:
        await engine.dispose()


def group_commit(db: Database) -> GroupCommit:
    """The GroupCommit `open_ledger_db` bound to `db`'s sessions."""
    committer = db.sessions.kw["info"][COMMITTER_INFO]
    assert isinstance(committer, GroupCommit)
    return committer


async def check_ledger(db: Database) -> None:
    """The invariants: no wallet below zero, every balance the sum of its postings, every
    transaction balanced per currency, and the balances of all accounts summing to zero."""
    async with db.sessions() as session:
        negative = await session.scalar(text("SELECT count(*) FROM wallets WHERE balance < 0"))
        drifted = await session.scalar(
            text(
                """
                SELECT count(*) FROM (
                    SELECT w.id FROM wallets w LEFT JOIN ledger_postings p ON p.wallet_id = w.id
                    GROUP BY w.id, w.balance HAVING w.balance <> coalesce(sum(p.amount), 0)
                    UNION ALL
                    SELECT s.id FROM system_accounts s
                    LEFT JOIN ledger_postings p ON p.system_account_id = s.id
                    GROUP BY s.id, s.balance HAVING s.balance <> coalesce(sum(p.amount), 0)
                ) AS bad
                """
            )
        )
        unbalanced = await session.scalar(
            text(
                """
                SELECT count(*) FROM (
                    SELECT transaction_id FROM ledger_postings
                    GROUP BY transaction_id, currency HAVING sum(amount) <> 0
                ) AS bad
                """
            )
        )
        totals = (
            await session.execute(
                text(
                    """
                    SELECT currency, sum(balance) AS total FROM (
                        SELECT currency, balance FROM wallets
                        UNION ALL SELECT currency, balance FROM system_accounts
                    ) AS accounts GROUP BY currency
                    """
                )
            )
        ).all()
    assert (negative, drifted, unbalanced) == (0, 0, 0)
    assert all(row.total == 0 for row in totals), totals
