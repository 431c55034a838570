"""`?after=<cursor>&limit=` as a FastAPI dependency; the paging types are domain/paging.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from azora_nexus.domain.paging import DEFAULT_LIMIT, MAX_LIMIT, PageRequest, decode_cursor


async def page_request(
    after: Annotated[str | None, Query(description="cursor from the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> PageRequest:
    return PageRequest(after=decode_cursor(after) if after else None, limit=limit)


PageDep = Annotated[PageRequest, Depends(page_request)]
