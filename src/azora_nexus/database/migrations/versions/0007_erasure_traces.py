"""`erasure_traces`: erasures whose traces outside PostgreSQL are still to be removed.

The erasing transaction adds a row; the node removes it once the stream, the archive, the
documents, the cache and Redis's AOF no longer name the user. A backend failing mid-scrub
(or the node dying) leaves the row, and every node retries it until it is done.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasure_traces",
        sa.Column("tombstone_id", sa.Uuid(), nullable=False),
        sa.Column("tombstone_username", sa.Text(), nullable=False),
        sa.Column("tombstone_email", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("subject_email", sa.Text(), nullable=False),
        sa.Column("subject_username", sa.Text(), nullable=False),
        sa.Column("wallet_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "erased_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tombstone_id", name=op.f("pk_erasure_traces")),
    )


def downgrade() -> None:
    op.drop_table("erasure_traces")
