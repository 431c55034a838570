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
from azora_nexus.domain.ledger import rewards
from azora_nexus.domain.ledger import service as wallets
from azora_nexus.domain.ledger.accounts import ensure_wallets, system_account_id
from azora_nexus.domain.ledger.amounts import format_amount, parse_amount
from azora_nexus.domain.ledger.models import Currency, SystemAccountKind, TransactionKind
from azora_nexus.domain.seed import plan
from azora_nexus.domain.seed.target import SEEDER
from azora_nexus.events.envelope import now_ms
from azora_nexus.events.outbox import NOTIFY_CHANNEL, add_events, new_event
from azora_nexus.sync import invalidate_after_commit

# As in payout_sql.PAY_BATCH: new balances come from the locked rows, never from the
# UPDATE's own scan (it sees the statement's snapshot, maybe older).
_REWARD = text(
    """
    WITH batch AS (
        SELECT * FROM unnest(
            CAST(:user_ids AS uuid[]), CAST(:wallet_ids AS uuid[]),
            CAST(:keys AS text[]), CAST(:hashes AS text[])
        ) WITH ORDINALITY AS b(user_id, wallet_id, key, hash, n)
    ), locked_w AS MATERIALIZED (
        SELECT id, currency, balance FROM wallets
        WHERE id = ANY(CAST(:wallet_ids AS uuid[])) ORDER BY id FOR UPDATE
    ), locked_s AS MATERIALIZED (
        SELECT id, currency, balance FROM system_accounts
        WHERE id = CAST(:pool_id AS uuid) AND kind = 'mining_pool'
          AND (SELECT count(*) FROM locked_w) >= 0
        FOR UPDATE
    ), checks AS (
        SELECT
            (SELECT count(*) FROM locked_w) AS wallets_found,
            (SELECT count(*) FROM locked_s) AS pool_found,
            (SELECT coalesce(bool_and(currency = :currency), true) FROM locked_w)
              AND (SELECT coalesce(bool_and(currency = :currency), true) FROM locked_s)
              AS currencies_ok
    ), tx AS (
        INSERT INTO ledger_transactions
            (id, kind, idempotency_key, idempotency_scope, request_hash, memo, created_by)
        SELECT gen_random_uuid(), CAST(:kind AS text), b.key, CAST(:scope AS text), b.hash,
               NULL, CAST(:created_by AS text)
        FROM batch AS b CROSS JOIN checks
        WHERE checks.wallets_found = cardinality(CAST(:wallet_ids AS uuid[]))
          AND checks.pool_found = 1 AND checks.currencies_ok
        ORDER BY b.n
        ON CONFLICT (idempotency_key, idempotency_scope) DO NOTHING
        RETURNING id, idempotency_key
    ), paid AS MATERIALIZED (
        SELECT tx.id AS tx_id, b.user_id, b.wallet_id, b.n
        FROM tx JOIN batch AS b ON tx.idempotency_key = b.key
    ), w AS (
        UPDATE wallets SET balance = a.balance + CAST(:amount AS numeric)
        FROM paid JOIN locked_w AS a ON a.id = paid.wallet_id
        WHERE wallets.id = paid.wallet_id
          AND wallets.id = ANY(CAST(:wallet_ids AS uuid[]))
        RETURNING wallets.id
    ), s AS (
        UPDATE system_accounts
        SET balance = a.balance - CAST(:amount AS numeric) * (SELECT count(*) FROM paid)
        FROM locked_s AS a
        WHERE system_accounts.id = a.id AND EXISTS (SELECT 1 FROM paid)
        RETURNING system_accounts.id
    ), p AS (
        INSERT INTO ledger_postings (transaction_id, wallet_id, system_account_id, currency, amount)
        SELECT paid.tx_id, l.wallet_id, l.system_account_id, CAST(:currency AS text), l.amount
        FROM paid CROSS JOIN LATERAL (VALUES
            (1, NULL::uuid, CAST(:pool_id AS uuid), -CAST(:amount AS numeric)),
            (2, paid.wallet_id, NULL::uuid, CAST(:amount AS numeric))
        ) AS l(n, wallet_id, system_account_id, amount)
        ORDER BY paid.n, l.n
        RETURNING id
    ), o AS (
        INSERT INTO outbox (type, payload, source, user_id, timestamp_ms)
        SELECT 'finance.mining.reward',
               jsonb_build_object(
                   'transactionId', paid.tx_id::text, 'walletId', paid.wallet_id::text,
                   'amount', CAST(:amount_text AS text), 'currency', CAST(:currency AS text)),
               CAST(:source AS text), paid.user_id::text, CAST(:ts AS bigint)
        FROM paid ORDER BY paid.n
        RETURNING id
    ), notified AS (
        SELECT pg_notify(:channel, '') WHERE EXISTS (SELECT 1 FROM o)
    )
    SELECT
        checks.wallets_found, checks.pool_found, checks.currencies_ok,
        (SELECT count(*) FROM paid) AS paid,
        (SELECT coalesce(array_agg(user_id), '{}') FROM paid) AS paid_users,
        (SELECT coalesce(array_agg(wallet_id), '{}') FROM paid) AS paid_wallets,
        (SELECT count(*) FROM w) AS wallets_moved,
        (SELECT count(*) FROM s) AS pools_moved,
        (SELECT count(*) FROM p) AS lines,
        (SELECT count(*) FROM o) AS events
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
