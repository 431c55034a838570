"""Publishing from a domain write: the event joins the write's own transaction.

A rolled-back transaction leaves no event; a committed one leaves a row the relay will
put on the stream even if this process dies right after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from azora_nexus.events.envelope import NewEvent, now_ms, plain_payload
from azora_nexus.events.models import OutboxEvent
from azora_nexus.events.taxonomy import require_known

# The relay LISTENs here; PostgreSQL delivers a NOTIFY only when its transaction commits.
NOTIFY_CHANNEL = "azora_outbox"


def new_event(
    event_type: str, payload: dict[str, Any], *, source: str, user_id: str | None = None
) -> NewEvent:
    """A validated event of a known type, amounts as strings, stamped now."""
    require_known(event_type)
    return NewEvent(
        type=event_type,
        payload=plain_payload(payload),
        source=source,
        timestamp_ms=now_ms(),
        user_id=user_id,
    )


async def add_event(
    session: AsyncSession,
    event_type: str,
    payload: dict[str, Any],
    *,
    source: str,
    user_id: str | None = None,
) -> OutboxEvent:
    """Queue an event in the caller's transaction: published once if and only if it commits."""
    event = new_event(event_type, payload, source=source, user_id=user_id)
    return await queue_event(session, event)


async def queue_event(
    session: AsyncSession, event: NewEvent, *, nonce: str | None = None
) -> OutboxEvent:
    """Queue an event made already (`new_event`) in the caller's transaction."""
    row = OutboxEvent(
        nonce=nonce,
        type=event.type,
        payload=event.payload,
        source=event.source,
        user_id=event.user_id,
        timestamp_ms=event.timestamp_ms,
    )
    session.add(row)
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    return row


_ADD_EVENTS = text(
    """
    WITH o AS (
        INSERT INTO outbox (type, payload, source, user_id, timestamp_ms)
        SELECT e.type, CAST(e.payload AS jsonb), e.source, e.user_id, e.timestamp_ms
        FROM unnest(
            CAST(:types AS text[]), CAST(:payloads AS text[]), CAST(:sources AS text[]),
            CAST(:users AS text[]), CAST(:timestamps AS bigint[])
        ) WITH ORDINALITY AS e(type, payload, source, user_id, timestamp_ms, n)
        ORDER BY e.n
        RETURNING id
    )
    SELECT pg_notify(:channel, '') WHERE EXISTS (SELECT 1 FROM o)
    """
)


async def add_events(session: AsyncSession, events: Sequence[NewEvent]) -> None:
    """Queue many events (from `new_event`) in the caller's transaction in one statement, in
    order: for bulk writes, where one `add_event` each would cost a round trip each."""
    if not events:
        return
    await session.execute(
        _ADD_EVENTS,
        {
            "types": [e.type for e in events],
            "payloads": [orjson.dumps(e.payload).decode() for e in events],
            "sources": [e.source for e in events],
            "users": [e.user_id for e in events],
            "timestamps": [e.timestamp_ms for e in events],
            "channel": NOTIFY_CHANNEL,
        },
    )
