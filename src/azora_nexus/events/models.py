"""The transactional outbox: events written in the same transaction as the data they announce.

The relay publishes unpublished rows in `id` order onto the stream, then records the
stream id it got and when; the partial index keeps finding them cheap however long the
table grows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from azora_nexus.database.base import Base
from azora_nexus.database.types import TIMESTAMP


class OutboxEvent(Base):
    """One event envelope waiting for (or already given) its place on the stream."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    type: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    source: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    # The bus id (e.g. "1732300000000-0"), set once the relay has published the event.
    stream_id: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    # Set when a publish timed out and took the outbox: the stream entry its XADD may still
    # have made carries the same nonce, and the relay then publishes nothing twice.
    nonce: Mapped[str | None] = mapped_column(Text)
