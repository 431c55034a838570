"""Publishing without a database write, and reading history: the bus other parts use.

An event published while Redis does not answer takes a detour through the PostgreSQL
outbox, and the relay puts it on the stream, in order, once Redis is back. Until the
outbox has drained, this node keeps sending new events the same way, so that they do not
overtake the ones waiting there. A publish that timed out after its XADD was sent may have
reached Redis all the same (a frozen server runs it when it wakes): its stream entry and
its outbox row carry one nonce, and the relay publishes the row only if no entry has it.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from azora_nexus.database.engine import Database
from azora_nexus.errors import BackendUnavailable, PayloadTooLarge
from azora_nexus.events.envelope import Event, NewEvent
from azora_nexus.events.history import EventFilter, History
from azora_nexus.events.outbox import new_event, queue_event
from azora_nexus.events.stream import EventStream
from azora_nexus.guard import REDIS, backend_of, describe

logger = logging.getLogger(__name__)

MAX_EVENT_BYTES = 64 * 1024
QUEUED = ""  # the id of an event queued in the outbox, not on the stream yet
_PENDING = text("SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL)")


@dataclass
class Detour:
    """The outbox as the way onto the stream while Redis is away."""

    db: Database
    active: bool = False  # events wait in the outbox: new ones must queue behind them
    detoured: int = 0
    _checked_at: float = field(default=0.0, repr=False)

    async def still_needed(self) -> bool:
        """Whether events this node detoured still wait (checked at most every 50 ms)."""
        if not self.active:
            return False
        now = time.monotonic()
        if now - self._checked_at < 0.05:
            return True
        self._checked_at = now
        async with self.db.sessions() as session:
            self.active = bool((await session.execute(_PENDING)).scalar())
        return self.active

    async def queue(self, event: NewEvent, nonce: str) -> None:
        async with self.db.transaction() as session:
            await queue_event(session, event, nonce=nonce)
        self.active = True
        self.detoured += 1


@dataclass(frozen=True)
class EventBus:
    """The stream and its history; the one way to publish an event that has no write behind it."""

    stream: EventStream
    history: History
    detour: Detour | None = None

    async def publish(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        source: str,
        user_id: str | None = None,
    ) -> Event:
        """A validated event on the stream, with its id; Invalid or PayloadTooLarge otherwise.

        With Redis away, the event is queued in the outbox instead: the answer is then
        the event with the id `QUEUED` (""); the relay gives it its id when it publishes it.
        """
        event = new_event(event_type, payload, source=source, user_id=user_id)
        if len(event.encode()) > MAX_EVENT_BYTES:
            raise PayloadTooLarge(f"an event may take at most {MAX_EVENT_BYTES} bytes")
        if self.detour is None:
            return await self.stream.append(event)
        nonce = secrets.token_hex(8)
        if not await self.detour.still_needed():
            try:
                return await self.stream.append(event, nonce)
            except Exception as exc:
                if backend_of(exc) != REDIS:
                    raise
                logger.warning(
                    "redis unavailable (%s): events go through the outbox", describe(exc)
                )
        try:
            await self.detour.queue(event, nonce)
        except Exception as exc:
            if backend_of(exc) is None:
                raise
            raise BackendUnavailable(
                f"redis and postgres are unavailable: the event was not accepted ({describe(exc)})"
            ) from exc
        return event.with_id(QUEUED)

    async def read(
        self, after: str | None, limit: int, events_filter: EventFilter | None = None
    ) -> list[Event]:
        """Up to `limit` events after `after` that the filter lets through, oldest first."""
        return await self.history.read(after, limit, events_filter or EventFilter())
