"""The cache epoch, kept durably in PostgreSQL (table `epochs`).

Every cache key carries the epoch; moving it makes every entry written before unreachable.
Redis keeps a copy (the scripts compare against it), but PostgreSQL decides: it is up
whenever a write can commit, it survives a restart of Redis (from an old AOF or none) and
of Nexus, and every node hears of a move at once (NOTIFY) and at the latest when its next
script finds the copy in Redis differing (it then asks PostgreSQL).

The epoch moves when an invalidation may have been lost (Redis did not answer it), before
the write that made it returns, and whenever a node's breaker lets Redis be used again.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from azora_nexus.database.base import Base
from azora_nexus.database.engine import Database
from azora_nexus.database.types import TIMESTAMP

CHANNEL = "azora_cache_epoch"
CACHE = "cache"

_ENSURE = text(
    "INSERT INTO epochs (name, epoch) VALUES (:name, :epoch) ON CONFLICT (name) DO NOTHING"
)
_READ = text("SELECT epoch FROM epochs WHERE name = :name")
_MOVE = text(
    "INSERT INTO epochs (name, epoch) VALUES (:name, :epoch) "
    "ON CONFLICT (name) DO UPDATE SET epoch = excluded.epoch, moved_at = now()"
)


class Epoch(Base):
    """One named epoch (today only the cache's)."""

    __tablename__ = "epochs"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    epoch: Mapped[str] = mapped_column(Text)
    moved_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())


def new_epoch() -> str:
    return secrets.token_hex(6)


class DurableEpoch:
    """The cache epoch in PostgreSQL: read it, move it (and tell every node)."""

    def __init__(self, db: Database, name: str = CACHE) -> None:
        self.db = db
        self.name = name

    async def current(self) -> str:
        async with self.db.transaction() as session:
            await session.execute(_ENSURE, {"name": self.name, "epoch": new_epoch()})
            epoch = (await session.execute(_READ, {"name": self.name})).scalar_one()
        return str(epoch)

    async def move(self) -> str:
        epoch = new_epoch()
        async with self.db.transaction() as session:
            await session.execute(_MOVE, {"name": self.name, "epoch": epoch})
            await session.execute(
                text("SELECT pg_notify(:channel, :epoch)"), {"channel": CHANNEL, "epoch": epoch}
            )
        return epoch
