"""Finding or opening the accounts postings hit: system accounts and users' wallets."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.domain.ledger.models import Currency, SystemAccountKind

# Without a lock: locking here would take the row before the wallets, against the order
# `post_transaction` locks in. The SELECT half sees a row committed before the statement;
# a row committed by a racing creator after it started is found by the second try.
_SYSTEM_ACCOUNT = text(
    """
    WITH created AS (
        INSERT INTO system_accounts (id, kind, currency) VALUES (:id, :kind, :currency)
        ON CONFLICT (kind, currency) DO NOTHING RETURNING id
    )
    SELECT id FROM created
    UNION ALL
    SELECT id FROM system_accounts WHERE kind = :kind AND currency = :currency
    """
)

_WALLET = text(
    """
    WITH created AS (
        INSERT INTO wallets (id, user_id, currency) VALUES (:id, :user_id, :currency)
        ON CONFLICT (user_id, currency) DO NOTHING RETURNING id
    )
    SELECT id, true AS created FROM created
    UNION ALL
    SELECT id, false AS created FROM wallets WHERE user_id = :user_id AND currency = :currency
    """
)

_ATTEMPTS = 2


async def system_account_id(
    session: AsyncSession, kind: SystemAccountKind, currency: Currency
) -> uuid.UUID:
    """The id of the platform's `kind` account in `currency`, opened on first use."""
    params = {"kind": kind.value, "currency": currency.value}
    for _ in range(_ATTEMPTS):
        found = (await session.execute(_SYSTEM_ACCOUNT, {"id": uuid.uuid4(), **params})).first()
        if found is not None:
            return uuid.UUID(str(found.id))
    raise RuntimeError(f"system account {kind}/{currency} could not be opened")


async def ensure_wallet(
    session: AsyncSession, user_id: uuid.UUID, currency: Currency
) -> tuple[uuid.UUID, bool]:
    """The id of `user_id`'s wallet in `currency`, and whether this call opened it."""
    params = {"user_id": user_id, "currency": currency.value}
    for _ in range(_ATTEMPTS):
        found = (await session.execute(_WALLET, {"id": uuid.uuid4(), **params})).first()
        if found is not None:
            return uuid.UUID(str(found.id)), bool(found.created)
    raise RuntimeError(f"wallet {user_id}/{currency} could not be opened")


_WALLETS = text(
    """
    WITH created AS (
        INSERT INTO wallets (user_id, currency)
        SELECT user_id, :currency FROM unnest(CAST(:user_ids AS uuid[])) AS u(user_id)
        ON CONFLICT (user_id, currency) DO NOTHING RETURNING id, user_id
    )
    SELECT id, user_id, true AS created FROM created
    UNION ALL
    SELECT id, user_id, false AS created FROM wallets
    WHERE user_id = ANY(CAST(:user_ids AS uuid[])) AND currency = :currency
    """
)


async def ensure_wallets(
    session: AsyncSession, user_ids: list[uuid.UUID], currency: Currency
) -> dict[uuid.UUID, tuple[uuid.UUID, bool]]:
    """Each user's wallet id in `currency` and whether this call opened it (one round trip
    unless a concurrent opener raced us)."""
    found: dict[uuid.UUID, tuple[uuid.UUID, bool]] = {}
    for _ in range(_ATTEMPTS):
        missing = [u for u in user_ids if u not in found]
        if not missing:
            break
        rows = await session.execute(_WALLETS, {"user_ids": missing, "currency": currency.value})
        for row in rows:
            found[row.user_id] = (row.id, bool(row.created))
    if len(found) != len(set(user_ids)):
        raise RuntimeError(f"wallets in {currency} could not be opened for every user")
    return found
