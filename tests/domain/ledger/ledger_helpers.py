"""Helpers for ledger tests: users to own wallets, and money to fill them."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

from sqlalchemy import text

from azora_nexus.database.engine import Database
from azora_nexus.domain.ledger.accounts import ensure_wallet, system_account_id
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind
from azora_nexus.domain.ledger.postings import Posting, post_transaction

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
