"""Types, checks and fixtures shared by the domain route tests (conftest.py re-exports
the fixtures, so that this module, not the conftest, is what mypy checks)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import text

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.cache.cache import Cache, open_cache
from azora_nexus.config import Settings
from azora_nexus.database.engine import Database, open_database
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
                Posting(currency, Decimal(amount).copy_negate(), system_account_id=pool),
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


# Fixtures, re-exported by conftest.py ------------------------------------------------------
@pytest.fixture
def headers(settings: Settings) -> Headers:
    """`headers(role, sub)`: a bearer header the app under test accepts."""

    def make(role: Role, sub: str | None = None) -> dict[str, str]:
        assert settings.jwt_secret is not None
        token = issue_token(settings.jwt_secret, sub=sub or role.value, role=role)
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
async def domain_db(database_url: str) -> AsyncIterator[Database]:
    """The test's database, for setup and for checking what a route wrote."""
    async with open_database(database_url) as opened:
        yield opened


@pytest.fixture
def make_user(domain_db: Database, headers: Headers) -> MakeUser:
    """`await make_user()`: a new active user (no usable password) and its headers."""

    async def create(name: str | None = None, *, active: bool = True) -> Actor:
        user_id = uuid.uuid4()
        name = name or f"u{user_id.hex[:12]}"
        async with domain_db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO users (id, email, username, password_hash, is_active) "
                    "VALUES (:id, :email, :username, 'x', :active)"
                ),
                {"id": user_id, "email": f"{name}@example.com", "username": name, "active": active},
            )
        return Actor(user_id, headers(Role.USER, str(user_id)))

    return create


@pytest.fixture
async def side_cache(redis_url: str) -> AsyncIterator[Cache]:
    """A second cache client on the app's Redis: it sees what the app cached or dropped."""
    async with open_cache(redis_url) as cache:
        yield cache


@pytest.fixture
def read_events(client: AsyncClient, headers: Headers) -> ReadEvents:
    """`await read_events(type, count)`: the envelopes of that type on the stream, oldest
    first, once the relay has moved at least `count` of them there (at most 10 s)."""

    async def read(event_type: str, count: int = 1) -> list[dict[str, Any]]:
        async with asyncio.timeout(10):
            while True:
                response = await client.get(
                    "/events",
                    params={"type": event_type, "limit": 1000},
                    headers=headers(Role.ADMIN),
                )
                assert response.status_code == 200, response.text
                events: list[dict[str, Any]] = response.json()["events"]
                if len(events) >= count:
                    return events
                await asyncio.sleep(0.05)

    return read
