"""Tables partitioned by a time range: partitions made ahead of the clock, dropped whole.

A range partition is named `<table>_p<from>_<to>` (epoch seconds, UTC), so its bounds
are read from its name; `<table>_default` takes any row no range covers, so an insert
never fails for want of a partition. New ranges only ever start after the database's
clock, so no row can be waiting for one of them in the default partition.

Creating and dropping a partition takes an exclusive lock on the parent for an instant;
every such statement here runs under a short `lock_timeout` (200 ms), so a long transaction on
the table delays the work to the next round instead of queueing every writer behind it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

logger = logging.getLogger(__name__)

LOCK_TIMEOUT = "200ms"
_RANGE = re.compile(r"^(?P<table>\w+)_p(?P<start>\d+)_(?P<end>\d+)$")

_PARTITIONS = """
SELECT c.relname FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass($1)
"""


def default_partition(table: str) -> str:
    return f"{table}_default"


def is_partition_of(table: str, name: str) -> bool:
    """Whether `name` is one of `table`'s partitions (made here, not by a model)."""
    match = _RANGE.match(name)
    return name == default_partition(table) or (match is not None and match["table"] == table)


@dataclass(frozen=True, order=True)
class Partition:
    """One partition: its time range in epoch seconds, or no range for the default one."""

    end_s: int | None
    start_s: int | None
    name: str

    @property
    def is_default(self) -> bool:
        return self.start_s is None


def _partition(table: str, name: str) -> Partition | None:
    if name == default_partition(table):
        return Partition(None, None, name)
    match = _RANGE.match(name)
    if match is None or match["table"] != table:
        return None
    return Partition(int(match["end"]), int(match["start"]), name)


async def partitions(conn: asyncpg.Connection, table: str) -> list[Partition]:
    """The range partitions of `table` oldest first, then its default partition."""
    found = [_partition(table, row["relname"]) for row in await conn.fetch(_PARTITIONS, table)]
    ranges = sorted(p for p in found if p is not None and not p.is_default)
    return ranges + [p for p in found if p is not None and p.is_default]


async def clock_s(conn: asyncpg.Connection) -> float:
    """The database's clock, which `clock_timestamp()` defaults stamp rows with."""
    value: float = await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())::float8")
    return value


def _literal(epoch_s: int) -> str:
    return f"'{datetime.fromtimestamp(epoch_s, UTC).isoformat()}'"


async def create_ahead(
    conn: asyncpg.Connection, table: str, *, width_s: int, ahead_s: int
) -> list[str]:
    """Range partitions of `width_s` covering the clock's next `ahead_s`; the names made."""
    now_s = int(await clock_s(conn))
    ranges = [p for p in await partitions(conn, table) if not p.is_default]
    # A range never starts before the clock: rows of the past stay where they are.
    start = max(now_s + 1, ranges[-1].end_s or 0) if ranges else now_s + 1
    made: list[str] = []
    while start < now_s + ahead_s:
        name = f"{table}_p{start}_{start + width_s}"
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                await conn.execute(
                    f"CREATE TABLE {name} PARTITION OF {table} "
                    f"FOR VALUES FROM ({_literal(start)}) TO ({_literal(start + width_s)})"
                )
        except asyncpg.LockNotAvailableError:
            # The table stayed busy: the partitions made so far reach ahead; the rest
            # next round (and the default partition takes any row meanwhile).
            logger.info("%s is busy; its next partitions are made next round", table)
            return made
        made.append(name)
        start += width_s
    return made


async def drop(
    conn: asyncpg.Connection,
    table: str,
    partition: Partition,
    still_droppable: Callable[[asyncpg.Connection], Awaitable[bool]],
) -> bool:
    """Drop `partition` (empty it, for the default one) if `still_droppable` says so once
    no one else can touch the table; whether it did. Raises LockNotAvailableError when
    the table stays busy past the lock timeout."""
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # The parent first, as writers take it: locking the partition first could deadlock.
        await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        if not await still_droppable(conn):
            return False
        verb = "TRUNCATE" if partition.is_default else "DROP TABLE"
        await conn.execute(f"{verb} {partition.name}")
    return True


def skip_partitions(tables: Iterable[str]) -> Callable[[str | None, str, object], bool]:
    """An Alembic `include_name` hook that leaves out the partitions of `tables` (made at
    run time, not by the models), so autogenerate never proposes to drop them."""
    parents = list(tables)

    def include_name(name: str | None, type_: str, _: object) -> bool:
        return not (
            type_ == "table" and name is not None and any(is_partition_of(t, name) for t in parents)
        )

    return include_name
