"""Crediting many wallets from one system pool in one statement: the parts that the payout
jobs' batch (payout_sql.PAY_BATCH) and the seed's mining rewards (seed/bulk_mining.py) share.

Each statement brings its own `batch` (the users and their wallets), `tx` (one ledger
transaction per idempotency key, a key posted before skipped) and `paid` (the credits made
now: tx_id, user_id, wallet_id). These parts lock the accounts in the ledger's one order
(wallets by id, then the pool), check them, move each balance by exactly its postings, write
each credit's two postings (pool, then wallet) and its event, and count what they did, for
the caller to check. They read :wallet_ids, :pool_id, :currency, :amount (numeric),
:amount_text (as events show it), :source, :ts and :channel.

As in statements.POST, the new balances come from the locked rows, never from the UPDATE's
own scan, which sees the statement's (maybe older) snapshot.
"""

from __future__ import annotations


def locks(pool_kind: str) -> str:
    """`locked_w`, `locked_s` (the pool, of kind `pool_kind`, after the wallets) and
    `checks` (how many of each were found, and whether all are in :currency)."""
    return f"""
    locked_w AS MATERIALIZED (
        SELECT id, currency, balance FROM wallets
        WHERE id = ANY(CAST(:wallet_ids AS uuid[])) ORDER BY id FOR UPDATE
    ), locked_s AS MATERIALIZED (
        SELECT id, currency, balance FROM system_accounts
        WHERE id = CAST(:pool_id AS uuid) AND kind = '{pool_kind}'
          AND (SELECT count(*) FROM locked_w) >= 0
        FOR UPDATE
    ), checks AS (
        SELECT
            (SELECT count(*) FROM locked_w) AS wallets_found,
            (SELECT count(*) FROM locked_s) AS pool_found,
            (SELECT coalesce(bool_and(currency = :currency), true) FROM locked_w)
              AND (SELECT coalesce(bool_and(currency = :currency), true) FROM locked_s)
              AS currencies_ok
    )"""


# A credit's `tx` row is written only when this holds: every wallet and the pool found, all
# in :currency (`checks` joined).
CHECKED = """checks.wallets_found = cardinality(CAST(:wallet_ids AS uuid[]))
          AND checks.pool_found = 1 AND checks.currencies_ok"""


# `w` and `s`: each paid wallet up by :amount, the pool down by as much per credit.
MOVES = """
    w AS (
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
    )"""


def postings(order: str) -> str:
    """`p`: each credit's two postings, the credits in `order` (a column of `paid`)."""
    return f"""
    p AS (
        INSERT INTO ledger_postings (transaction_id, wallet_id, system_account_id, currency, amount)
        SELECT paid.tx_id, l.wallet_id, l.system_account_id, CAST(:currency AS text), l.amount
        FROM paid CROSS JOIN LATERAL (VALUES
            (1, NULL::uuid, CAST(:pool_id AS uuid), -CAST(:amount AS numeric)),
            (2, paid.wallet_id, NULL::uuid, CAST(:amount AS numeric))
        ) AS l(n, wallet_id, system_account_id, amount)
        ORDER BY paid.{order}, l.n
        RETURNING id
    )"""


def events(event_type: str, order: str, payload: str = "") -> str:
    """`o`: each credit's event `event_type` in the outbox (the credits in `order`), its
    payload the transaction, wallet, amount and currency and then `payload` (more
    `'key', value` pairs); `notified`: the relay woken when there is any."""
    extra = f", {payload}" if payload else ""
    return f"""
    o AS (
        INSERT INTO outbox (type, payload, source, user_id, timestamp_ms)
        SELECT '{event_type}',
               jsonb_build_object(
                   'transactionId', paid.tx_id::text, 'walletId', paid.wallet_id::text,
                   'amount', CAST(:amount_text AS text), 'currency', CAST(:currency AS text)
                   {extra}),
               CAST(:source AS text), paid.user_id::text, CAST(:ts AS bigint)
        FROM paid ORDER BY paid.{order}
        RETURNING id
    ), notified AS (
        SELECT pg_notify(:channel, '') WHERE EXISTS (SELECT 1 FROM o)
    )"""


# The counts of the parts above (their columns after `checks`'s).
COUNTS = """
        (SELECT count(*) FROM paid) AS paid,
        (SELECT coalesce(array_agg(user_id), '{}') FROM paid) AS paid_users,
        (SELECT coalesce(array_agg(wallet_id), '{}') FROM paid) AS paid_wallets,
        (SELECT count(*) FROM w) AS wallets_moved,
        (SELECT count(*) FROM s) AS pools_moved,
        (SELECT count(*) FROM p) AS lines,
        (SELECT count(*) FROM o) AS events"""
