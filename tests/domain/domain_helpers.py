"""Types and checks shared by the domain route tests."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from azora_nexus.database.engine import Database
from azora_nexus.domain.ledger.accounts import ensure_wallet, system_account_id
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind
from azora_nexus.domain.ledger.postings import Posting, post_transaction


@dataclass(frozen=True)
class Actor:
    """A user row and the bearer header that acts as it."""

    id: uuid.UUID
    headers: dict[str, str]

    @property
    def sid(self) -> str:
        return str(self.id)


MakeUser = Callable[..., Awaitable[Actor]]
ReadEvents = Callable[..., Awaitable[list[dict[str, Any]]]]
Headers = Callable[..., dict[str, str]]


EVENT_ID = re.compile(r"^\d+-\d+$")


def assert_envelope(
    event: dict[str, Any],
    *,
    event_type: str,
    payload: dict[str, Any],
    source: str,
    user_id: str | None,
) -> None:
    """`event` is exactly this envelope, with a bus id and a timestamp from the last minute."""
    expected: dict[str, Any] = {
        "id": event["id"],
        "type": event_type,
        "payload": payload,
        "source": source,
        "timestamp": event["timestamp"],
    }
    if user_id is not None:
        expected["userId"] = user_id
    assert event == expected
    assert EVENT_ID.match(event["id"])
    assert 0 <= time.time() * 1000 - event["timestamp"] < 60_000


async def outbox_types(db: Database) -> list[str]:
    """Every event type the outbox holds, in the order the writes added them."""
    async with db.sessions() as session:
        rows = await session.scalars(text("SELECT type FROM outbox ORDER BY id"))
        return list(rows)


async def fund(db: Database, user_id: uuid.UUID, currency: Currency, amount: str) -> uuid.UUID:
    """The user's wallet in `currency`, credited `amount` from the mining pool."""
    async with db.transaction() as session:
        wallet_id, _ = await ensure_wallet(session, user_id, currency)
        pool = await system_account_id(session, SystemAccountKind.MINING_POOL, currency)
        await post_transaction(
            session,
            kind=TransactionKind.MINING_REWARD,
            idempotency_key=f"test-fund:{uuid.uuid4()}",
            request_hash="test-fund",
            postings=[
                Posting(currency, -Decimal(amount), system_account_id=pool),
                Posting(currency, Decimal(amount), wallet_id=wallet_id),
            ],
        )
    return wallet_id


async def balance_of(db: Database, user_id: uuid.UUID, currency: Currency) -> Decimal | None:
    """The user's wallet balance in `currency`, or None without a wallet."""
    async with db.sessions() as session:
        found: Decimal | None = await session.scalar(
            text("SELECT balance FROM wallets WHERE user_id = :u AND currency = :c"),
            {"u": user_id, "c": currency.value},
        )
        return found


async def escrow_balance(db: Database, currency: Currency) -> Decimal:
    async with db.sessions() as session:
        found: Decimal | None = await session.scalar(
            text("SELECT balance FROM system_accounts WHERE kind = 'escrow' AND currency = :c"),
            {"c": currency.value},
        )
        return Decimal(0) if found is None else found


async def assert_ledger_exact(db: Database) -> None:
    """Every account's balance equals the sum of its postings; each currency sums to zero."""
    async with db.sessions() as session:
        drift = (
            await session.execute(
                text(
                    """
                    SELECT a.id FROM (
                        SELECT id, balance FROM wallets UNION ALL
                        SELECT id, balance FROM system_accounts
                    ) AS a
                    LEFT JOIN ledger_postings p
                      ON p.wallet_id = a.id OR p.system_account_id = a.id
                    GROUP BY a.id, a.balance
                    HAVING a.balance <> coalesce(sum(p.amount), 0)
                    """
                )
            )
        ).all()
        unbalanced = (
            await session.execute(
                text(
                    "SELECT currency FROM ledger_postings GROUP BY currency HAVING sum(amount) <> 0"
                )
            )
        ).all()
    assert drift == []
    assert unbalanced == []
