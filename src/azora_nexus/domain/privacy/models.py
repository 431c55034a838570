"""The erased users: sha256(user id) of everyone erased, never the id itself."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Identity, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from azora_nexus.database.base import Base
from azora_nexus.database.types import TIMESTAMP


class ErasedUser(Base):
    """One erased user; `seq` orders the rows so a node can read only the newer ones."""

    __tablename__ = "erased_users"

    subject_sha256: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    erased_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
