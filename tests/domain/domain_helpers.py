"""Types and checks shared by the domain route tests."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from azora_nexus.database.engine import Database


@dataclass(frozen=True)
class Actor:
    """A user row and the bearer header that acts as it."""

    id: uuid.UUID
    headers: dict[str, str]

    @property
    def sid(self) -> str:
        return str(self.id)


MakeUser = Callable[..., Awaitable[Actor]]
ReadEvents = Callable[..., Awaitable[list[dict[str, Any]]]]
Headers = Callable[..., dict[str, str]]


EVENT_ID = re.compile(r"^\d+-\d+$")


def assert_envelope(
    event: dict[str, Any],
    *,
    event_type: str,
    payload: dict[str, Any],
    source: str,
    user_id: str | None,
) -> None:
    """`event` is exactly this envelope, with a bus id and a timestamp from the last minute."""
    expected: dict[str, Any] = {
        "id": event["id"],
        "type": event_type,
        "payload": payload,
        "source": source,
        "timestamp": event["timestamp"],
    }
    if user_id is not None:
        expected["userId"] = user_id
    assert event == expected
    assert EVENT_ID.match(event["id"])
    assert 0 <= time.time() * 1000 - event["timestamp"] < 60_000


async def outbox_types(db: Database) -> list[str]:
    """Every event type the outbox holds, in the order the writes added them."""
    async with db.sessions() as session:
        rows = await session.scalars(text("SELECT type FROM outbox ORDER BY id"))
        return list(rows)
