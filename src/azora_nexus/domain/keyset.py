"""One page of rows in creation order, keyed by `(created_at, id)`: the domain's list query."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from azora_nexus.domain.paging import Page, PageRequest, next_cursor
from azora_nexus.errors import Invalid

RowT = TypeVar("RowT")
ItemT = TypeVar("ItemT")


def parse_creation_key(after: Sequence[str]) -> tuple[datetime, uuid.UUID]:
    """The `(created_at, id)` a cursor holds; Invalid for a cursor of another list."""
    try:
        created_raw, id_raw = after
        created_at, row_id = datetime.fromisoformat(created_raw), uuid.UUID(id_raw)
    except ValueError as exc:
        raise Invalid("after: not a cursor of this list") from exc
    if created_at.tzinfo is None:
        raise Invalid("after: not a cursor of this list")
    return created_at, row_id


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
