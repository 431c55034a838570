"""Publishing from a domain write: the event joins the write's own transaction.

A rolled-back transaction leaves no event; a committed one leaves a row the relay will
put on the stream even if this process dies right after the commit.
"""

from __future__ import annotations

from typing import Any

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
