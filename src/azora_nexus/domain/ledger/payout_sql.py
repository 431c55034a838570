"""The SQL of payout jobs: claiming a distribution, and paying one batch in one statement.

Why one statement per batch: a statement per user (statements.POST) costs a round trip
and a plan per user, ~1,000 users/s; one set-based statement does a batch's thousand
credits inside PostgreSQL. It keeps the ledger's one lock order (wallets by id, then
system accounts by id) and every invariant of POST: balanced postings, balances moved by
exactly their postings, one transaction per idempotency key, events in the outbox.
"""

from __future__ import annotations

from sqlalchemy import text

from azora_nexus.domain.ledger import credit_sql

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
# :key_prefix (`ubi:<key>:`, the user id completes each key), :hash, :memo, :created_by,
# :distribution, and those of credit_sql. A user whose key was posted before is skipped
# (ON CONFLICT), so a batch retried after a crash pays only whom it had not; `paid` lists
# the ones it did.
PAY_BATCH = text(
    f"""
    WITH batch AS (
        SELECT * FROM unnest(CAST(:user_ids AS uuid[]), CAST(:wallet_ids AS uuid[]))
            AS b(user_id, wallet_id)
    ), {credit_sql.locks("ubi_pool")}, tx AS (
        INSERT INTO ledger_transactions (id, kind, idempotency_key, request_hash, memo, created_by)
        SELECT gen_random_uuid(), 'ubi', :key_prefix || b.user_id::text, :hash,
               CAST(:memo AS text), CAST(:created_by AS text)
        FROM batch AS b CROSS JOIN checks WHERE {credit_sql.CHECKED}
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
    ), {credit_sql.MOVES}, {credit_sql.postings("user_id")}, {
        credit_sql.events(
            "finance.ubi.distributed", "user_id", "'distribution', CAST(:distribution AS text)"
        )
    }
    SELECT
        checks.wallets_found, checks.pool_found, checks.currencies_ok,
        (SELECT n FROM clashing) AS clashing,{credit_sql.COUNTS},
        (SELECT count(*) FROM notified) AS notified
    FROM checks
    """
)
