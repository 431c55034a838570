"""Durable fault state: the cache epoch and the erased users, both in PostgreSQL.

`epochs` holds the cache epoch that every node's cache keys carry: moved whenever an
invalidation may have been lost (Redis did not answer), so no entry from before can be
served, whatever Redis keeps or restores. `erased_users` holds sha256(user id) of every
erased user: the revocation check of every node reads it (kept in memory), and backups
carry it. `outbox.nonce` marks an event that took the outbox because Redis did not answer
its XADD, which Redis may still have run: the relay publishes it only if it is not there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("nonce", sa.Text(), nullable=True))
    op.create_table(
        "epochs",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("epoch", sa.Text(), nullable=False),
        sa.Column(
            "moved_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_epochs")),
    )
    op.create_table(
        "erased_users",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("subject_sha256", sa.Text(), nullable=False),
        sa.Column(
            "erased_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("subject_sha256", name=op.f("pk_erased_users")),
        sa.UniqueConstraint("seq", name=op.f("uq_erased_users_seq")),
    )


def downgrade() -> None:
    op.drop_table("erased_users")
    op.drop_table("epochs")
    op.drop_column("outbox", "nonce")
