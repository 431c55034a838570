"""Ledger fixtures: a database of this test's own and a factory of funded wallets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from ledger_helpers import WalletFactory, create_user, fund

from azora_nexus.database.engine import Database, open_database
from azora_nexus.domain.ledger.accounts import ensure_wallet
from azora_nexus.domain.ledger.models import Currency


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with open_database(database_url) as opened:
        yield opened


@pytest.fixture
def wallet(db: Database) -> WalletFactory:
    """`await wallet(currency, balance)`: a new user's wallet holding `balance`."""

    async def create(currency: Currency = Currency.USD, balance: str = "0") -> uuid.UUID:
        user_id = await create_user(db)
        async with db.transaction() as session:
            wallet_id, _ = await ensure_wallet(session, user_id, currency)
        if Decimal(balance) > 0:
            await fund(db, wallet_id, currency, Decimal(balance))
        return wallet_id

    return create
