"""The ledger's SQL: one statement posts a whole transaction, locks to outbox.

Why one statement: rows of hot wallets stay locked from the moment they are locked until
the transaction commits. Between statements the locks would wait on this process's event
loop (busy with every other request); inside one statement they wait on nothing but
PostgreSQL. Run in autocommit, a transfer holds its locks for one statement and its commit.
"""

from __future__ import annotations

from sqlalchemy import text

# Parameters: :wallet_ids and :system_ids (sorted, distinct), the lines (:line_* arrays, one
# element per posting), the transaction row (:id, :kind, :key, :scope, :hash, :memo, :created_by),
# the events (:ev_* arrays) and :channel. Answers one row of what happened.
#
# Lock order: wallets by id, then system accounts by id. `locked_s` reads the count of
# `locked_w` first (an InitPlan), so every wallet is locked before any system account.
# FOR UPDATE returns each row's newest committed version, and the checks use it. The UPDATEs
# compute the new balance from that locked version too, never from `wallets.balance`: their
# scan sees the statement's snapshot, which may be older, and PostgreSQL evaluates CHECK
# constraints on that first computed row before it re-reads the newest one (EvalPlanQual),
# so `balance + delta` there can fail `balance >= 0` for a transfer that is covered. The
# rows stay locked by us from the check to the write: the locked balance is the balance.
POST = text(
    """
    WITH lines AS (
        SELECT * FROM unnest(
            CAST(:line_wallets AS uuid[]), CAST(:line_systems AS uuid[]),
            CAST(:line_currencies AS text[]), CAST(:line_amounts AS numeric[])
        ) WITH ORDINALITY AS l(wallet_id, system_account_id, currency, amount, n)
    ), deltas AS (
        SELECT coalesce(wallet_id, system_account_id) AS account_id, currency,
               sum(amount) AS delta
        FROM lines GROUP BY 1, 2
    ), locked_w AS MATERIALIZED (
        SELECT id, currency, balance, false AS may_go_negative FROM wallets
        WHERE id = ANY(CAST(:wallet_ids AS uuid[])) ORDER BY id FOR UPDATE
    ), locked_s AS MATERIALIZED (
        SELECT id, currency, balance, kind IN ('mining_pool', 'ubi_pool') AS may_go_negative
        FROM system_accounts
        WHERE id = ANY(CAST(:system_ids AS uuid[])) AND (SELECT count(*) FROM locked_w) >= 0
        ORDER BY id FOR UPDATE
    ), accounts AS (
        SELECT * FROM locked_w UNION ALL SELECT * FROM locked_s
    ), checks AS (
        SELECT
            (SELECT count(*) FROM accounts) AS found,
            coalesce(bool_and(a.currency = d.currency), true) AS currencies_ok,
            coalesce(bool_and(a.may_go_negative OR a.balance + d.delta >= 0), true) AS funds_ok
        FROM deltas AS d JOIN accounts AS a ON a.id = d.account_id
    ), existing AS (
        SELECT id, request_hash FROM ledger_transactions
        WHERE idempotency_key = :key AND idempotency_scope = :scope
    ), tx AS (
        INSERT INTO ledger_transactions
            (id, kind, idempotency_key, idempotency_scope, request_hash, memo, created_by)
        SELECT CAST(:id AS uuid), CAST(:kind AS text), CAST(:key AS text),
               CAST(:scope AS text), CAST(:hash AS text),
               CAST(:memo AS text), CAST(:created_by AS text)
        FROM checks
        WHERE NOT EXISTS (SELECT 1 FROM existing)
          AND checks.found = :account_count AND checks.currencies_ok AND checks.funds_ok
        ON CONFLICT (idempotency_key, idempotency_scope) DO NOTHING
        RETURNING id, created_at
    ), w AS (
        UPDATE wallets SET balance = a.balance + d.delta
        FROM deltas AS d JOIN locked_w AS a ON a.id = d.account_id
        WHERE wallets.id = d.account_id AND EXISTS (SELECT 1 FROM tx)
          -- Spelled out so the plan finds the rows by primary key, however large the table.
          AND wallets.id = ANY(CAST(:wallet_ids AS uuid[]))
        RETURNING wallets.id
    ), s AS (
        UPDATE system_accounts SET balance = a.balance + d.delta
        FROM deltas AS d JOIN locked_s AS a ON a.id = d.account_id
        WHERE system_accounts.id = d.account_id AND EXISTS (SELECT 1 FROM tx)
          AND system_accounts.id = ANY(CAST(:system_ids AS uuid[]))
        RETURNING system_accounts.id
    ), p AS (
        INSERT INTO ledger_postings (transaction_id, wallet_id, system_account_id, currency, amount)
        SELECT tx.id, l.wallet_id, l.system_account_id, l.currency, l.amount
        FROM tx CROSS JOIN lines AS l ORDER BY l.n
        RETURNING id
    ), o AS (
        INSERT INTO outbox (type, payload, source, user_id, timestamp_ms)
        SELECT e.type, CAST(e.payload AS jsonb), e.source, e.user_id, e.timestamp_ms
        FROM tx CROSS JOIN unnest(
            CAST(:ev_types AS text[]), CAST(:ev_payloads AS text[]),
            CAST(:ev_sources AS text[]), CAST(:ev_users AS text[]),
            CAST(:ev_timestamps AS bigint[])
        ) WITH ORDINALITY AS e(type, payload, source, user_id, timestamp_ms, n)
        ORDER BY e.n
        RETURNING id
    ), notified AS (
        -- The relay LISTENs on :channel; PostgreSQL delivers it only if this commits.
        SELECT pg_notify(:channel, '') FROM tx WHERE EXISTS (SELECT 1 FROM o)
    )
    SELECT
        (SELECT request_hash FROM existing) AS existing_hash,
        checks.found, checks.currencies_ok, checks.funds_ok,
        (SELECT created_at FROM tx) AS created_at,
        (SELECT count(*) FROM w) + (SELECT count(*) FROM s) AS accounts_moved,
        (SELECT count(*) FROM p) AS lines,
        (SELECT count(*) FROM o) AS events,
        (SELECT count(*) FROM notified) AS notified
    FROM checks
    """
)

FIND = text(
    """
    SELECT id, kind, request_hash, memo, created_by, created_at
    FROM ledger_transactions WHERE idempotency_key = :key AND idempotency_scope = :scope
    """
)

FIND_POSTINGS = text(
    """
    SELECT wallet_id, system_account_id, currency, amount
    FROM ledger_postings WHERE transaction_id = :id ORDER BY id
    """
)

LOCK_ACCOUNTS = text(
    """
    WITH w AS (
        SELECT id FROM wallets
        WHERE id = ANY(CAST(:wallet_ids AS uuid[])) ORDER BY id FOR UPDATE
    ), s AS (
        SELECT id FROM system_accounts
        WHERE id = ANY(CAST(:system_ids AS uuid[])) AND (SELECT count(*) FROM w) >= 0
        ORDER BY id FOR UPDATE
    )
    SELECT (SELECT count(*) FROM w) + (SELECT count(*) FROM s) AS locked
    """
)
