"""Event history: the stream and, beyond its cap, the archive, read as one sequence.

The archive is read only for what the stream no longer holds: a stream that never lost an
entry (no trim, no erasure) answers every read alone, so history needs no MongoDB then;
otherwise a read reaching before the stream's oldest entry needs the archive, and gets a
503 naming mongo when MongoDB does not answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azora_nexus.events.archive import Archive
from azora_nexus.events.envelope import Event, parse_event_id, previous_id
from azora_nexus.events.stream import EventStream
from azora_nexus.events.taxonomy import TypeSelector

STREAM_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a reader gets: by type, by the user concerned, and what it may see."""

    types: TypeSelector | None = None
    user_id: str | None = None  # only events concerning this user
    viewer: str | None = None  # None: sees everything; else public events and its own

    def matches(self, event: Event) -> bool:
        if self.types is not None and not self.types.matches(event.type):
            return False
        if self.user_id is not None and event.user_id != self.user_id:
            return False
        return self.viewer is None or event.user_id in (None, self.viewer)

    def mongo_query(self) -> dict[str, Any]:
        clauses: list[dict[str, Any]] = []
        if self.types is not None:
            clauses.append({"type": {"$in": self.types.expand()}})
        if self.user_id is not None:
            clauses.append({"userId": self.user_id})
        if self.viewer is not None:
            clauses.append({"userId": {"$in": [None, self.viewer]}})
        return {"$and": clauses} if clauses else {}


def _before_first(cursor: str | None, first: str) -> bool:
    """Whether events may exist after `cursor` but before the stream's oldest, `first`."""
    return cursor is None or parse_event_id(cursor) < parse_event_id(previous_id(first))


@dataclass(frozen=True)
class History:
    """Reads events in id order from wherever they still are."""

    stream: EventStream
    archive: Archive

    async def read(self, after: str | None, limit: int, events_filter: EventFilter) -> list[Event]:
        """Up to `limit` matching events after `after`, oldest first, with no gap.

        Fewer than `limit` means none are left right now. HistoryExpired when the events
        right after `after` are neither on the stream nor kept by the archive any more.
        """
        found: list[Event] = []
        cursor = after
        first, complete = await self.stream.head()
        if complete:
            whole = await self._stream_only(cursor, limit, events_filter, first)
            if whole is not None:
                return whole
            first = await self.stream.first_id()  # trimmed meanwhile: the general way
        if first is None or _before_first(cursor, first):
            # Older than the stream's oldest: the archive has it (when the archiver kept up).
            await self.archive.require_kept_after(cursor)
            found += await self.archive.read(
                after=cursor, before=first, query=events_filter.mongo_query(), limit=limit
            )
            if first is None or len(found) >= limit:
                return found
            cursor = previous_id(first)
        while len(found) < limit:
            first, chunk = await self.stream.window_after(cursor, STREAM_CHUNK)
            if first is None or _before_first(cursor, first):
                # Trimmed while we read: the stream's oldest entry and the chunk come from
                # one atomic read, so the archive below `first` plus the chunk leave no hole.
                await self.archive.require_kept_after(cursor)
                found += await self.archive.read(
                    after=cursor,
                    before=first,
                    query=events_filter.mongo_query(),
                    limit=limit - len(found),
                )
                if first is None or len(found) >= limit:
                    break
            found += [e for e in chunk if events_filter.matches(e)][: limit - len(found)]
            if len(chunk) < STREAM_CHUNK:
                break
            cursor = chunk[-1].id
        return found

    async def _stream_only(
        self, cursor: str | None, limit: int, events_filter: EventFilter, first: str | None
    ) -> list[Event] | None:
        """The read from a stream that holds every event; None if it was trimmed meanwhile."""
        found: list[Event] = []
        while len(found) < limit:
            oldest, chunk = await self.stream.window_after(cursor, STREAM_CHUNK)
            if oldest is not None and first is not None and oldest != first:
                return None
            first = first or oldest
            found += [e for e in chunk if events_filter.matches(e)][: limit - len(found)]
            if len(chunk) < STREAM_CHUNK:
                break
            cursor = chunk[-1].id
        return found
