"""The erased users: sha256(user id) of everyone erased, never the id itself; and the
erasures whose traces outside PostgreSQL are still to be removed."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Identity, Text, Uuid, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from azora_nexus.database.base import Base
from azora_nexus.database.types import TIMESTAMP


class ErasedUser(Base):
    """One erased user; `seq` orders the rows so a node can read only the newer ones."""

    __tablename__ = "erased_users"

    subject_sha256: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    erased_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class PendingTraces(Base):
    """An erasure committed in PostgreSQL whose traces elsewhere (stream, archive, documents,
    cache, Redis's AOF) are not known to be gone yet: kept from the erasing transaction until
    they are, so a backend failing mid-scrub (or a node dying) leaves work that is retried,
    never an erased user's events in the archive for good. It names the user (what the scrub
    must find and replace) only for that long."""

    __tablename__ = "erasure_traces"

    tombstone_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    tombstone_username: Mapped[str] = mapped_column(Text)
    tombstone_email: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    subject_email: Mapped[str] = mapped_column(Text)
    subject_username: Mapped[str] = mapped_column(Text)
    wallet_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    # The user's creation: the archive is searched for tied events from then on.
    since: Mapped[datetime] = mapped_column(TIMESTAMP)
    erased_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
