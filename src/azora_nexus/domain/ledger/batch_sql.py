"""The SQL of a group commit: a batch of transfers posted in one statement.

One statement, autocommitted: the batch's wallets are locked once, in the ledger's one
order (by id; transfers touch no system account), and held only for the statement and
its commit, so batches of several nodes interleave without deadlock. One commit (one WAL
flush) and one round trip carry the whole batch.

Each transfer is decided in arrival order (`n`) against the balances left by the ones
before it that were accepted: a recursive CTE walks the batch carrying those balances
(a jsonb object, exact: jsonb numbers are `numeric`). One that would overdraw its source
is refused alone; the others post. The rest is statements.POST's work, set-based: the
transaction rows, balances moved by exactly their postings, the postings, the outbox
events and one NOTIFY.

An idempotency key committed before the statement began is seen in `existing` (the caller
answers those as replays). A key that another node commits meanwhile is not, so the
INSERT has no ON CONFLICT: its unique violation fails the whole statement, and the caller
retries that batch transfer by transfer (each on the one-transfer path, which handles it).
Decisions made for the later transfers of a batch can thus never rest on one not posted.
"""

from __future__ import annotations

from sqlalchemy import text

# Parameters: :items, a JSON array of one object per transfer in arrival order, with its
# place `n` (from 1), `id`, `key`, `hash`, `memo`, `created_by`, `actor` (the caller's
# token subject), `privileged` (admin or service), `source`, `target`, `currency`,
# `amount` (a decimal string: exact as numeric), `amount_text` (as events show it) and
# `ts` (ms, of its events); :wallet_ids (every wallet of the batch, sorted, distinct);
# :source (the events' source) and :channel. One JSON text, not an array per field: the
# driver checked every element of every array on its own (a tenth of a batch's CPU).
# Answers one row per transfer, in order: its verdict, whether it was accepted, its
# created_at once posted, the owners of its wallets as locked; and the counts of what was
# written, on every row.
#
# The owners are read under the lock: a wallet moves to a tombstone when its user is
# erased, so the caller's own reading of them may be stale by now. The caller's right to
# the source wallet is checked against them, and the events name them.
#
# As in statements.POST, the new balances are computed from the rows as locked (their
# newest committed versions), never from the UPDATE's own scan of an older snapshot.
POST_TRANSFERS = text(
    """
    WITH RECURSIVE items AS MATERIALIZED (
        SELECT * FROM jsonb_to_recordset(CAST(:items AS jsonb)) AS i(
            id uuid, key text, hash text, memo text, created_by text, actor text,
            privileged boolean, source uuid, target uuid, currency text, amount numeric,
            amount_text text, ts bigint, n bigint
        )
    ), locked AS MATERIALIZED (
        SELECT id, user_id, currency, balance FROM wallets
        WHERE id = ANY(CAST(:wallet_ids AS uuid[])) ORDER BY id FOR UPDATE
    ), existing AS MATERIALIZED (
        -- A transfer's key is scoped to its sender (the token subject, `actor`). One probe
        -- of the (key, scope) unique index per transfer: LIMIT makes the lateral a nested
        -- loop, where a join let the planner (guessing 100 items) scan every transaction
        -- ever posted (3.7 ms of a 16-transfer batch at 24,000 transactions, growing).
        SELECT t.key, t.scope
        FROM items AS i CROSS JOIN LATERAL (
            SELECT x.idempotency_key AS key, x.idempotency_scope AS scope
            FROM ledger_transactions AS x
            WHERE x.idempotency_key = i.key AND x.idempotency_scope = i.actor
            LIMIT 1
        ) AS t
    ), judged AS MATERIALIZED (
        -- In the order the one-transfer path checks: accounts, rights, currencies, key.
        SELECT i.n, i.source, i.target, i.amount, s.user_id AS source_user,
               t.user_id AS target_user,
               CASE WHEN s.id IS NULL OR t.id IS NULL THEN 'not_found'
                    WHEN NOT i.privileged AND s.user_id::text <> i.actor THEN 'forbidden'
                    WHEN s.currency <> i.currency OR t.currency <> i.currency THEN 'currency'
                    WHEN EXISTS (
                        SELECT 1 FROM existing AS e WHERE e.key = i.key AND e.scope = i.actor
                    ) THEN 'existing'
                    ELSE 'candidate' END AS verdict
        FROM items AS i
        LEFT JOIN locked AS s ON s.id = i.source
        LEFT JOIN locked AS t ON t.id = i.target
    ), decided(n, balances, accepted) AS (
        SELECT CAST(0 AS bigint),
               coalesce((SELECT jsonb_object_agg(id::text, balance) FROM locked), '{}'),
               false
        UNION ALL
        SELECT j.n,
               CASE WHEN ok.accepted THEN jsonb_set(
                   jsonb_set(d.balances, ARRAY[j.source::text], to_jsonb(b.src - j.amount)),
                   ARRAY[j.target::text], to_jsonb(b.tgt + j.amount))
               ELSE d.balances END,
               ok.accepted
        FROM decided AS d JOIN judged AS j ON j.n = d.n + 1
        CROSS JOIN LATERAL (
            SELECT CAST(d.balances ->> j.source::text AS numeric) AS src,
                   CAST(d.balances ->> j.target::text AS numeric) AS tgt
        ) AS b
        CROSS JOIN LATERAL (
            SELECT coalesce(j.verdict = 'candidate' AND b.src - j.amount >= 0, false) AS accepted
        ) AS ok
    ), accepted AS MATERIALIZED (
        SELECT i.*, j.source_user, j.target_user
        FROM items AS i JOIN decided AS d ON d.n = i.n JOIN judged AS j ON j.n = i.n
        WHERE d.accepted
    ), tx AS (
        INSERT INTO ledger_transactions
            (id, kind, idempotency_key, idempotency_scope, request_hash, memo, created_by)
        SELECT id, 'transfer', key, actor, hash, memo, created_by FROM accepted ORDER BY n
        RETURNING id, created_at
    ), lines AS (
        SELECT a.n, 1 AS side, a.id AS tx_id, a.source AS wallet_id, a.currency,
               -a.amount AS amount
        FROM accepted AS a
        UNION ALL
        SELECT a.n, 2, a.id, a.target, a.currency, a.amount FROM accepted AS a
    ), deltas AS (
        SELECT wallet_id, sum(amount) AS delta FROM lines GROUP BY wallet_id
    ), w AS (
        UPDATE wallets SET balance = l.balance + d.delta
        FROM deltas AS d JOIN locked AS l ON l.id = d.wallet_id
        WHERE wallets.id = d.wallet_id AND EXISTS (SELECT 1 FROM tx)
          -- Spelled out so the plan finds the rows by primary key, however large the table.
          AND wallets.id = ANY(CAST(:wallet_ids AS uuid[]))
        RETURNING wallets.id
    ), p AS (
        INSERT INTO ledger_postings (transaction_id, wallet_id, currency, amount)
        SELECT l.tx_id, l.wallet_id, l.currency, l.amount
        FROM lines AS l WHERE EXISTS (SELECT 1 FROM tx) ORDER BY l.n, l.side
        RETURNING id
    ), o AS (
        -- `finance.transaction.completed`, once for each party (transfers.transfer_events).
        INSERT INTO outbox (type, payload, source, user_id, timestamp_ms)
        SELECT 'finance.transaction.completed',
               jsonb_build_object(
                   'transactionId', a.id::text, 'fromWalletId', a.source::text,
                   'toWalletId', a.target::text, 'amount', a.amount_text,
                   'currency', a.currency, 'memo', a.memo),
               CAST(:source AS text), party.user_id::text, a.ts
        FROM accepted AS a
        CROSS JOIN LATERAL (VALUES (1, a.source_user), (2, a.target_user)) AS party(k, user_id)
        WHERE EXISTS (SELECT 1 FROM tx)
        ORDER BY a.n, party.k
        RETURNING id
    ), notified AS (
        -- The relay LISTENs on :channel; PostgreSQL delivers it only if this commits.
        SELECT pg_notify(:channel, '') WHERE EXISTS (SELECT 1 FROM o)
    )
    SELECT j.n, j.verdict, d.accepted, tx.created_at, j.source_user, j.target_user,
           (SELECT count(*) FROM tx) AS posted,
           (SELECT count(*) FROM w) AS wallets_moved,
           (SELECT count(*) FROM p) AS lines,
           (SELECT count(*) FROM o) AS events,
           (SELECT count(*) FROM notified) AS notified
    FROM judged AS j
    JOIN decided AS d ON d.n = j.n
    LEFT JOIN items AS i ON i.n = j.n
    LEFT JOIN tx ON tx.id = i.id
    ORDER BY j.n
    """
)
