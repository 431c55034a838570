"""Keyset paging for every list: `?after=<cursor>&limit=` → `{"items": [...], "next"}`.

A cursor is opaque to clients: the sort key of the last item, as url-safe base64 JSON.
The HTTP side (the query parameters) is api/paging.py; this is what the domain returns.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson
from pydantic import BaseModel

from azora_nexus.errors import Invalid

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    """One page of a list: its items and the cursor of the next page (null at the end)."""

    items: list[T]
    next: str | None


@dataclass(frozen=True)
class PageRequest:
    """Where a page starts (after the item whose sort key is `after`) and how long it is."""

    after: list[str] | None
    limit: int


def encode_cursor(sort_key: list[str]) -> str:
    """An opaque cursor for the item with `sort_key` (e.g. `[created_at, id]`)."""
    return base64.urlsafe_b64encode(orjson.dumps(sort_key)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[str]:
    """The sort key inside `cursor`; Invalid (422) when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise Invalid("after: not a valid cursor") from exc
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid("after: not a valid cursor")
    return value


def next_cursor(
    rows: Sequence[T], request: PageRequest, sort_key: Callable[[T], list[str]]
) -> str | None:
    """The next page's cursor when `rows` (fetched with limit + 1) has more than a page."""
    if len(rows) <= request.limit:
        return None
    return encode_cursor(sort_key(rows[request.limit - 1]))
