"""The SQL of payout jobs: claiming a distribution, and paying one batch in one statement.

Why one statement per batch: a statement per user (statements.POST) costs a round trip
and a plan per user, ~1,000 users/s; one set-based statement does a batch's thousand
credits inside PostgreSQL. It keeps the ledger's one lock order (wallets by id, then
system accounts by id) and every invariant of POST: balanced postings, balances moved by
exactly their postings, one transaction per idempotency key, events in the outbox.
"""

from __future__ import annotations

from sqlalchemy import text

# A running distribution nobody holds, or whose holder has not renewed its claim within
# the lease (its node died): claimed for `:token`. SKIP LOCKED: a job whose holder is
# mid-batch (its row locked) is not waited for, it is alive.
CLAIM = text(
    """
    UPDATE distributions SET claimed_by = :token, heartbeat_at = now()
    WHERE id = (
        SELECT id FROM distributions
        WHERE status = 'running'
          AND (claimed_by IS NULL OR heartbeat_at < now() - make_interval(secs => :lease_s))
        ORDER BY created_at LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, idempotency_key, request_hash, currency, amount_per_user, created_by,
              total_users
    """
)

# First in every batch's transaction: the job's row, locked until commit, only while this
# claim still holds it. Taken before any wallet, by every batch, so the order stays global.
HOLD = text(
    """
    SELECT cursor, paid, already_paid FROM distributions
    WHERE id = :id AND claimed_by = :token AND status = 'running'
    FOR UPDATE
    """
)

BY_INDEX = text(
    "SELECT set_config('enable_seqscan', 'off', true),"
    " set_config('plan_cache_mode', 'force_custom_plan', true)"
)

NEXT_USERS = text("SELECT id FROM users WHERE is_active AND id > :after ORDER BY id LIMIT :limit")

ADVANCE = text(
    """
    UPDATE distributions
    SET cursor = :cursor, paid = paid + :paid, already_paid = already_paid + :already_paid,
        heartbeat_at = now()
    WHERE id = :id
    RETURNING paid, already_paid
    """
)

FINISH = text(
    """
    UPDATE distributions
    SET status = :status, error = :error, finished_at = now(), claimed_by = NULL,
        heartbeat_at = now()
    WHERE id = :id AND claimed_by = :token AND status = 'running'
    RETURNING paid, already_paid, total_users
    """
)

RELEASE = text("UPDATE distributions SET claimed_by = NULL WHERE id = :id AND claimed_by = :token")

# Parameters: :user_ids and :wallet_ids (parallel: each user's wallet in the currency),
# :pool_id, :amount (numeric) and :amount_text (as events show it), :currency, :key_prefix
# (`ubi:<key>:`, the user id completes each key), :hash, :memo, :created_by, :distribution,
# :source, :ts, :channel. A user whose key was posted before is skipped (ON CONFLICT), so
# a batch retried after a crash pays only whom it had not; `paid` lists the ones it did.
#
# As in statements.POST, the new balances come from the locked rows, never from the
# UPDATE's own scan, which sees the statement's (maybe older) snapshot.
PAY_BATCH = text(
    """
    WITH batch AS (
        SELECT * FROM unnest(CAST(:user_ids AS uuid[]), CAST(:wallet_ids AS uuid[]))
            AS b(user_id, wallet_id)
    ), locked_w AS MATERIALIZED (
        SELECT id, currency, balance FROM wallets
        WHERE id = ANY(CAST(:wallet_ids AS uuid[])) ORDER BY id FOR UPDATE
    ), locked_s AS MATERIALIZED (
        SELECT id, currency, balance FROM system_accounts
        WHERE id = CAST(:pool_id AS uuid) AND kind = 'ubi_pool'
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
        INSERT INTO ledger_transactions (id, kind, idempotency_key, request_hash, memo, created_by)
        SELECT gen_random_uuid(), 'ubi', :key_prefix || b.user_id::text, :hash,
               CAST(:memo AS text), CAST(:created_by AS text)
        FROM batch AS b CROSS JOIN checks
        WHERE checks.wallets_found = cardinality(CAST(:wallet_ids AS uuid[]))
          AND checks.pool_found = 1 AND checks.currencies_ok
        ORDER BY b.user_id
        ON CONFLICT (idempotency_key, idempotency_scope) DO NOTHING
        RETURNING id, idempotency_key
    ), paid AS MATERIALIZED (
        SELECT tx.id AS tx_id, b.user_id, b.wallet_id
        FROM tx JOIN batch AS b ON tx.idempotency_key = :key_prefix || b.user_id::text
    ), clashing AS (
        -- Users skipped (their key posted before) whose key was posted for another request:
        -- the caller rolls the batch back and fails the job. Looked up key by key: a batch
        -- retried after a crash skips a few, a first run none, and the table may be huge.
        SELECT count(*) AS n
        FROM batch AS b CROSS JOIN LATERAL (
            SELECT 1 FROM ledger_transactions AS t
            WHERE t.idempotency_key = :key_prefix || b.user_id::text
              AND t.idempotency_scope = '' AND t.request_hash <> :hash
        ) AS other
        WHERE NOT EXISTS (SELECT 1 FROM paid WHERE paid.user_id = b.user_id)
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
        ORDER BY paid.user_id, l.n
        RETURNING id
    ), o AS (
        INSERT INTO outbox (type, payload, source, user_id, timestamp_ms)
        SELECT 'finance.ubi.distributed',
               jsonb_build_object(
                   'transactionId', paid.tx_id::text, 'walletId', paid.wallet_id::text,
                   'amount', CAST(:amount_text AS text), 'currency', CAST(:currency AS text),
                   'distribution', CAST(:distribution AS text)),
               CAST(:source AS text), paid.user_id::text, CAST(:ts AS bigint)
        FROM paid ORDER BY paid.user_id
        RETURNING id
    ), notified AS (
        SELECT pg_notify(:channel, '') WHERE EXISTS (SELECT 1 FROM o)
    )
    SELECT
        checks.wallets_found, checks.pool_found, checks.currencies_ok,
        (SELECT n FROM clashing) AS clashing,
        (SELECT count(*) FROM paid) AS paid,
        (SELECT coalesce(array_agg(user_id), '{}') FROM paid) AS paid_users,
        (SELECT coalesce(array_agg(wallet_id), '{}') FROM paid) AS paid_wallets,
        (SELECT count(*) FROM w) AS wallets_moved,
        (SELECT count(*) FROM s) AS pools_moved,
        (SELECT count(*) FROM p) AS lines,
        (SELECT count(*) FROM o) AS events,
        (SELECT count(*) FROM notified) AS notified
    FROM checks
    """
)
