"""Idempotency keys scoped to whoever chose them: `ledger_transactions.idempotency_scope`.

A key was unique across everyone, so a key used by one client answered 409 to another (and
a user could take a key Nexus would later make for an escrow). Now a key is unique within
its scope: the token subject that sent it (transfers, mining rewards) or "" for keys Nexus
makes (escrow, UBI payments, adjustments).

Existing rows keep their meaning for their owner: a transfer or mining reward was always
posted with `created_by` = the caller's subject (an erased user's already names their
tombstone), so that becomes its scope and the owner's retry with the old key still finds it.
Every other row is Nexus's own and gets "". No key can collide on the way up: (key, scope)
is at least as unique as key. On the way down, a key used in several scopes keeps its
plain form in Nexus's scope (or, failing that, in one row) and becomes `<scope>:<key>` in
the others, so the old single-column uniqueness holds again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "ledger_transactions"


def upgrade() -> None:
    op.add_column(
        TABLE, sa.Column("idempotency_scope", sa.Text(), server_default="", nullable=False)
    )
    op.execute(
        "UPDATE ledger_transactions SET idempotency_scope = created_by"
        " WHERE kind IN ('transfer', 'mining_reward') AND created_by IS NOT NULL"
    )
    op.drop_constraint(op.f("uq_ledger_transactions_idempotency_key"), TABLE, type_="unique")
    op.create_unique_constraint(
        op.f("uq_ledger_transactions_idempotency_key_idempotency_scope"),
        TABLE,
        ["idempotency_key", "idempotency_scope"],
    )


def downgrade() -> None:
    op.execute(
        """
        WITH ranked AS (
            SELECT id, row_number() OVER (
                PARTITION BY idempotency_key
                ORDER BY idempotency_scope <> '', created_at, id
            ) AS n
            FROM ledger_transactions
        )
        UPDATE ledger_transactions AS t
        SET idempotency_key = t.idempotency_scope || ':' || t.idempotency_key
        FROM ranked WHERE ranked.id = t.id AND ranked.n > 1
        """
    )
    op.drop_constraint(
        op.f("uq_ledger_transactions_idempotency_key_idempotency_scope"), TABLE, type_="unique"
    )
    op.create_unique_constraint(
        op.f("uq_ledger_transactions_idempotency_key"), TABLE, ["idempotency_key"]
    )
    op.drop_column(TABLE, "idempotency_scope")
