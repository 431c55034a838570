"""The transactional outbox: events written in the same transaction as the data they announce.

The relay publishes unpublished rows in `id` order onto the stream, then records the
stream id it got and when; the partial index keeps finding them cheap however long the
table grows.

The table is partitioned by `created_at` (database/partitions.py): retention drops whole
partitions once every row in them is published, archived and old enough, so it leaves
no dead rows behind to vacuum. A DEFAULT partition takes any row no range covers, so an
insert never fails for want of a partition. Ids come from a sequence (not an identity
column: PostgreSQL 15 refuses those on partitioned tables).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DDL, BigInteger, Index, PrimaryKeyConstraint, Sequence, Text, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from azora_nexus.database.base import Base
from azora_nexus.database.types import TIMESTAMP

OUTBOX_TABLE = "outbox"
OUTBOX_ID_SEQUENCE = Sequence("outbox_id_seq")
# The partition every row lands in when no time range covers it.
OUTBOX_DEFAULT_PARTITION = DDL("CREATE TABLE outbox_default PARTITION OF outbox DEFAULT")  # type: ignore[no-untyped-call]


class OutboxEvent(Base):
    """One event envelope waiting for (or already given) its place on the stream."""

    __tablename__ = OUTBOX_TABLE
    __table_args__ = (
        # The partition key must be part of the primary key; ids alone are unique already.
        PrimaryKeyConstraint("id", "created_at", name="pk_outbox"),
        Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
        ),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )
    __mapper_args__ = {"primary_key": ["id"]}  # noqa: RUF012 (SQLAlchemy reads it as given)

    id: Mapped[int] = mapped_column(
        BigInteger, OUTBOX_ID_SEQUENCE, server_default=OUTBOX_ID_SEQUENCE.next_value()
    )
    type: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    source: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    # The time of the insert itself (not of its transaction's start), so a row always
    # lands in the partition of the moment it was written.
    created_at: Mapped[datetime] = mapped_column(
        TIMESTAMP, server_default=text("clock_timestamp()")
    )
    # The bus id (e.g. "1732300000000-0"), set once the relay has published the event.
    stream_id: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    # Set when a publish timed out and took the outbox: the stream entry its XADD may still
    # have made carries the same nonce, and the relay then publishes nothing twice.
    nonce: Mapped[str | None] = mapped_column(Text)


event.listen(OutboxEvent.__table__, "after_create", OUTBOX_DEFAULT_PARTITION)
