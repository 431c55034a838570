"""Event history: the stream and, beyond its cap, the archive, read as one sequence.

The archive is read only for what the stream no longer holds: a stream that never lost an
entry (no trim, no erasure) answers every read alone, so history needs no MongoDB then;
otherwise a read reaching before the stream's oldest entry needs the archive, and gets a
503 naming mongo when MongoDB does not answer.

A read limited to some audiences (a user's: public events and its own; or one user's
events) goes through the audience indexes (events/audience.py) on the stream and in the
archive, so it costs what the events it returns cost (in the archive, a typed read also
reads its audiences' events of other types), however many events of other users lie in
between; only until the index has taken in a stream written before it existed does
such a read scan the stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azora_nexus.errors import HistoryExpired
from azora_nexus.events.archive import Archive
from azora_nexus.events.audience import Audiences
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

    @property
    def audiences(self) -> Audiences:
        return Audiences.of(viewer=self.viewer, user_id=self.user_id)

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

    async def require_kept_after(self, after: str) -> None:
        """HistoryExpired when a read after `after` would meet events retention removed
        or the stream dropped unarchived (what `read` raises), checked before a caller
        commits to the read."""
        await self._start_after(after)
        first = await self.stream.first_id()
        if first is None or _before_first(after, first):
            await self.archive.require_kept_after(after)

    async def _start_after(self, after: str | None) -> str | None:
        """Where a read after `after` starts: past events the stream had to drop before the
        archive had them (only past its hard cap), so that no read spans that hole; a read
        from before it is HistoryExpired."""
        lost = await self.stream.unarchived_through()
        if lost is None:
            return after
        if after is None:
            return lost
        if parse_event_id(after) < parse_event_id(lost):
            raise HistoryExpired(
                f"events after {after} were dropped from the stream before they were "
                f"archived (through {lost}); read again without `after`"
            )
        return after

    async def read(self, after: str | None, limit: int, events_filter: EventFilter) -> list[Event]:
        """Up to `limit` matching events after `after`, oldest first, with no gap.

        Fewer than `limit` means none are left right now. HistoryExpired when the events
        right after `after` are neither on the stream nor kept by the archive any more.
        """
        audiences = events_filter.audiences
        if not audiences.everyone and not audiences.keys:
            return []  # another user's events, asked for by a user: none it may see
        indexed = not audiences.everyone and await self.stream.audience_index_ready()
        found: list[Event] = []
        cursor = await self._start_after(after)
        first, complete = await self.stream.head()
        if complete:
            whole = await self._stream_only(cursor, limit, events_filter, first, indexed)
            if whole is not None:
                return whole
            first = await self.stream.first_id()  # trimmed meanwhile: the general way
        if first is None or _before_first(cursor, first):
            # Older than the stream's oldest: the archive has it (when the archiver kept up).
            await self.archive.require_kept_after(cursor)
            found += await self.archive.read(
                after=cursor, before=first, events_filter=events_filter, limit=limit
            )
            if first is None or len(found) >= limit:
                return found
            cursor = previous_id(first)
        while len(found) < limit:
            first, chunk, more = await self._window(
                cursor, limit - len(found), events_filter, indexed
            )
            if first is None or _before_first(cursor, first):
                # Trimmed while we read: the stream's oldest entry and the chunk come from
                # one atomic read, so the archive below `first` plus the chunk leave no hole.
                await self.archive.require_kept_after(cursor)
                found += await self.archive.read(
                    after=cursor,
                    before=first,
                    events_filter=events_filter,
                    limit=limit - len(found),
                )
                if first is None or len(found) >= limit:
                    break
            found += [e for e in chunk if events_filter.matches(e)][: limit - len(found)]
            if not more:
                break
            cursor = chunk[-1].id
        return found

    async def _window(
        self, cursor: str | None, need: int, events_filter: EventFilter, indexed: bool
    ) -> tuple[str | None, list[Event], bool]:
        """The stream's oldest id, the next entries after `cursor` worth filtering, and
        whether more may follow: every entry, or through the audience index only those of
        the filter's audiences (atomically either way)."""
        if not indexed:
            # Every entry passes a filter that has nothing to filter: read just what is needed.
            unfiltered = events_filter == EventFilter()
            count = min(need, STREAM_CHUNK) if unfiltered else STREAM_CHUNK
            first, chunk = await self.stream.window_after(cursor, count)
            return first, chunk, len(chunk) == count
        # Exactly what is still needed, unless a type filter may drop some of them.
        count = need if events_filter.types is None else STREAM_CHUNK
        count = min(count, STREAM_CHUNK)
        first, chunk = await self.stream.visible_after(events_filter.audiences.keys, cursor, count)
        return first, chunk, len(chunk) == count

    async def _stream_only(
        self,
        cursor: str | None,
        limit: int,
        events_filter: EventFilter,
        first: str | None,
        indexed: bool,
    ) -> list[Event] | None:
        """The read from a stream that holds every event; None if it was trimmed meanwhile."""
        found: list[Event] = []
        while len(found) < limit:
            oldest, chunk, more = await self._window(
                cursor, limit - len(found), events_filter, indexed
            )
            if oldest is not None and first is not None and oldest != first:
                return None
            first = first or oldest
            found += [e for e in chunk if events_filter.matches(e)][: limit - len(found)]
            if not more:
                break
            cursor = chunk[-1].id
        return found
