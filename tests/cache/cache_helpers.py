"""A scratch table of versioned rows (not the domain's models) and Redis layout helpers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.cache import keys
from azora_nexus.database.engine import Database


def probe_key(row_id: int) -> keys.CacheKey:
    return keys.key("probe", row_id)


class ProbeTable:
    """`probe(id, version)`: each write bumps a row's version; a read returns it."""

    def __init__(self, db: Database, *, fill_delay_s: float = 0.0) -> None:
        self.db = db
        self.fill_delay_s = fill_delay_s  # injected between the database read and the fill
        self.loads = 0

    async def create(self, rows: int) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                text("CREATE TABLE probe (id integer PRIMARY KEY, version bigint NOT NULL)")
            )
            await session.execute(
                text("INSERT INTO probe SELECT g, 1 FROM generate_series(0, :n - 1) g"),
                {"n": rows},
            )

    async def version(self, row_id: int) -> int:
        """The committed version, read in a transaction of its own."""
        self.loads += 1
        async with self.db.sessions() as session:
            found = await session.scalar(
                text("SELECT version FROM probe WHERE id = :id"), {"id": row_id}
            )
        if self.fill_delay_s:
            await asyncio.sleep(random.uniform(0, self.fill_delay_s))
        return int(found)

    async def bump(self, row_id: int, before_commit: Callable[[AsyncSession], None]) -> int:
        """Commit version + 1 (calling `before_commit` inside the transaction); returns it."""
        async with self.db.transaction() as session:
            version = await session.scalar(
                text("UPDATE probe SET version = version + 1 WHERE id = :id RETURNING version"),
                {"id": row_id},
            )
            before_commit(session)
        return int(version)
