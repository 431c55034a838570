"""Payout jobs: `distributions`, one row per UBI distribution, resumable by any node.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENCIES = ("AZR", "USD", "BTC", "ETH")
STATUSES = ("running", "completed", "failed")


def one_of(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    listed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_distributions_{column}"))


def upgrade() -> None:
    op.create_table(
        "distributions",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(32), nullable=False),
        sa.Column("amount_per_user", sa.Numeric(precision=38, scale=18), nullable=False),
        sa.Column("status", sa.String(32), server_default="running", nullable=False),
        sa.Column("total_users", sa.BigInteger(), nullable=False),
        sa.Column("paid", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("already_paid", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("cursor", sa.Uuid(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_distributions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_distributions_idempotency_key")),
        sa.CheckConstraint("amount_per_user > 0", name=op.f("ck_distributions_amount_positive")),
        one_of("currency", CURRENCIES),
        one_of("status", STATUSES),
    )
    op.create_index(
        "ix_distributions_running",
        "distributions",
        ["created_at"],
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_table("distributions")
