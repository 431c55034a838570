"""Starting balances a batch at a time: what `rewards.reward_mining` posts per user, for many
users in one statement.

Per user it is the same ledger transaction (kind `mining_reward`, the user's key in the
seed's scope, the same request hash, so a later `reward_mining` with that key replays it),
the same two postings (pool, then wallet), the same `finance.mining.reward` event, and the
wallet opened and announced first when missing. The statement keeps the ledger's lock
order (wallets by id, then the pool) and moves every balance by exactly its postings; a
key posted before is skipped (ON CONFLICT), never posted twice.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.cache import keys
from azora_nexus.domain.ledger import credit_sql, rewards
from azora_nexus.domain.ledger import service as wallets
from azora_nexus.domain.ledger.accounts import ensure_wallets, system_account_id
from azora_nexus.domain.ledger.amounts import format_amount, parse_amount
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind
from azora_nexus.domain.seed import plan
from azora_nexus.domain.seed.target import SEEDER
from azora_nexus.events.envelope import now_ms
from azora_nexus.events.outbox import NOTIFY_CHANNEL, add_events, new_event
from azora_nexus.sync import invalidate_after_commit

# Parameters: :user_ids, :wallet_ids, :keys and :hashes (parallel, one credit each), :kind,
# :scope, :created_by, and those of credit_sql.
_REWARD = text(
    f"""
    WITH batch AS (
        SELECT * FROM unnest(
            CAST(:user_ids AS uuid[]), CAST(:wallet_ids AS uuid[]),
            CAST(:keys AS text[]), CAST(:hashes AS text[])
        ) WITH ORDINALITY AS b(user_id, wallet_id, key, hash, n)
    ), {credit_sql.locks("mining_pool")}, tx AS (
        INSERT INTO ledger_transactions
            (id, kind, idempotency_key, idempotency_scope, request_hash, memo, created_by)
        SELECT gen_random_uuid(), CAST(:kind AS text), b.key, CAST(:scope AS text), b.hash,
               NULL, CAST(:created_by AS text)
        FROM batch AS b CROSS JOIN checks WHERE {credit_sql.CHECKED}
        ORDER BY b.n
        ON CONFLICT (idempotency_key, idempotency_scope) DO NOTHING
        RETURNING id, idempotency_key
    ), paid AS MATERIALIZED (
        SELECT tx.id AS tx_id, b.user_id, b.wallet_id, b.n
        FROM tx JOIN batch AS b ON tx.idempotency_key = b.key
    ), {credit_sql.MOVES}, {credit_sql.postings("n")}, {
        credit_sql.events("finance.mining.reward", "n")
    }
    SELECT
        checks.wallets_found, checks.pool_found, checks.currencies_ok,{credit_sql.COUNTS}
    FROM checks
    """
)


async def open_wallets(
    session: AsyncSession, user_ids: list[uuid.UUID], currency: Currency
) -> list[uuid.UUID]:
    """Each user's wallet in `currency`, in order; one just opened is announced as
    `open_wallet` announces it (`finance.wallet.created`, its list invalidated)."""
    found = await ensure_wallets(session, user_ids, currency)
    opened = [(u, found[u][0]) for u in user_ids if found[u][1]]
    events = [
        new_event(
            "finance.wallet.created",
            {"walletId": str(wallet_id), "currency": currency.value},
            source=wallets.SOURCE,
            user_id=str(user_id),
        )
        for user_id, wallet_id in opened
    ]
    await add_events(session, events)
    if opened:
        invalidate_after_commit(session, [keys.user_wallets(u) for u, _ in opened])
    return [found[u][0] for u in user_ids]


async def reward_batch(
    session: AsyncSession, currency: Currency, user_ids: list[uuid.UUID], reward_keys: list[str]
) -> int:
    """Credit each user its starting balance in `currency` from the mining pool, once per
    key, in the caller's transaction; how many were credited now."""
    amount = parse_amount(str(plan.FUNDING[currency]), currency)
    wallet_ids = await open_wallets(session, user_ids, currency)
    pool = await system_account_id(session, SystemAccountKind.MINING_POOL, currency)
    hashes = [
        rewards.fingerprint(
            {"mining": {"user": str(u), "currency": currency.value, "amount": str(amount)}}
        )
        for u in user_ids
    ]
    row = (
        await session.execute(
            _REWARD,
            {
                "user_ids": user_ids,
                "wallet_ids": wallet_ids,
                "keys": reward_keys,
                "hashes": hashes,
                "pool_id": pool,
                "amount": amount,
                "amount_text": format_amount(amount, currency),
                "currency": currency.value,
                "kind": TransactionKind.MINING_REWARD.value,
                "scope": SEEDER.user_id,
                "created_by": SEEDER.user_id,
                "source": rewards.SOURCE,
                "ts": now_ms(),
                "channel": NOTIFY_CHANNEL,
            },
        )
    ).one()
    if not (row.wallets_found == len(set(wallet_ids)) and row.pool_found == 1):
        raise RuntimeError(f"mining batch in {currency}: wallets or pool missing")
    if not row.currencies_ok:
        raise RuntimeError(f"mining batch in {currency}: an account in another currency")
    if (row.wallets_moved, row.lines, row.events) != (row.paid, 2 * row.paid, row.paid):
        raise RuntimeError(f"mining batch in {currency}: postings do not match the credits")
    paid = list(zip(row.paid_users, row.paid_wallets, strict=True))
    invalidate_after_commit(
        session, [k for u, w in paid for k in (keys.wallet(w), keys.user_wallets(u))]
    )
    return int(row.paid)
