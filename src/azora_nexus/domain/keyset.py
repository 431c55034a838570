"""One page of rows in creation order, keyed by `(created_at, id)`: the domain's list query."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from azora_nexus.domain.paging import Page, PageRequest, next_cursor
from azora_nexus.errors import Invalid

RowT = TypeVar("RowT")
ItemT = TypeVar("ItemT")


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def parse_creation_key(after: Sequence[str]) -> tuple[datetime, uuid.UUID]:
    """The `(created_at, id)` a cursor holds, as this list writes them (ASCII, an aware time
    that exists in UTC, a canonical uuid); Invalid (422) for anything else, so no cursor
    reaches PostgreSQL out of its range."""
    try:
        created_raw, id_raw = after
        if not (created_raw.isascii() and _UUID.fullmatch(id_raw)):
            raise ValueError("not ours")
        created_at = datetime.fromisoformat(created_raw)
        if created_at.tzinfo is None:
            raise ValueError("naive")
        # Past the ends of the calendar once moved to UTC (year 1 at +14:00): OverflowError.
        return created_at.astimezone(UTC), uuid.UUID(id_raw)
    except (ValueError, OverflowError) as exc:
        raise Invalid("after: not a cursor of this list") from exc


async def page_by_creation(
    session: AsyncSession,
    query: Select[RowT],
    columns: tuple[InstrumentedAttribute[datetime], InstrumentedAttribute[uuid.UUID]],
    page: PageRequest,
    to_item: Callable[[RowT], ItemT],
) -> Page[ItemT]:
    """The page of `query`'s rows after the cursor, oldest first, and the next cursor."""
    created_at, row_id = columns

    def cursor_of(row: RowT) -> list[str]:
        when: datetime = getattr(row, created_at.key)
        return [when.isoformat(), str(getattr(row, row_id.key))]

    if page.after is not None:
        query = query.where(tuple_(created_at, row_id) > tuple_(*parse_creation_key(page.after)))
    ordered: Any = query.order_by(created_at, row_id).limit(page.limit + 1)
    rows: Sequence[RowT] = (await session.scalars(ordered)).all()
    return Page(
        items=[to_item(row) for row in rows[: page.limit]],
        next=next_cursor(rows, page, cursor_of),
    )
