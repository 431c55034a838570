"""Publishing without a database write, and reading history: the bus other parts use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azora_nexus.errors import PayloadTooLarge
from azora_nexus.events.envelope import Event
from azora_nexus.events.history import EventFilter, History
from azora_nexus.events.outbox import new_event
from azora_nexus.events.stream import EventStream

MAX_EVENT_BYTES = 64 * 1024


@dataclass(frozen=True)
class EventBus:
    """The stream and its history; the one way to publish an event that has no write behind it."""

    stream: EventStream
    history: History

    async def publish(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        source: str,
        user_id: str | None = None,
    ) -> Event:
        """A validated event on the stream, with its id; Invalid or PayloadTooLarge otherwise."""
        event = new_event(event_type, payload, source=source, user_id=user_id)
        if len(event.encode()) > MAX_EVENT_BYTES:
            raise PayloadTooLarge(f"an event may take at most {MAX_EVENT_BYTES} bytes")
        return await self.stream.append(event)

    async def read(
        self, after: str | None, limit: int, events_filter: EventFilter | None = None
    ) -> list[Event]:
        """Up to `limit` events after `after` that the filter lets through, oldest first."""
        return await self.history.read(after, limit, events_filter or EventFilter())
