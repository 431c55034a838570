"""The Mongo event archive: every event, kept beyond the stream's cap, keyed by its id.

Documents are the envelope with `_id` = the event id, plus `ms` and `seq` (the id's
two numbers) because ids do not sort as strings ("5-10" < "5-9"), and `aud`, the audience
that may see the event (events/audience.py). Every read is a set of index ranges: by `ms`,
by `(type, ms)` or by `(aud, ms)`, one equality prefix each, merged here; so a user's page
costs the events of its audiences in the range, not everyone's. A read limited to
audiences and types reads its audiences' ranges and keeps the types in Python (`_read`).

Three indexes and no more: every event is archived and each index costs each one a write
(the server's CPU per event grew ~0.06 ms an index), while the archive is read only for
what the stream no longer holds. Indexes older releases made are dropped once `aud` is
backfilled (`OBSOLETE_INDEXES`). Documents archived before `aud` existed get it once
(`backfill_audience`); until then a read limited to audiences uses the old query.

Retention (`AZORA_ARCHIVE_RETENTION_S`) removes the oldest events by `ms`. Before it
removes any, it records the newest id it is about to remove (`retention` collection): a
read after an older id would miss events, so it answers `history_expired` rather than a
replay with a hole in it.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, OperationFailure
from pymongo.write_concern import WriteConcern

from azora_nexus.documents.client import Document, Documents
from azora_nexus.errors import HistoryExpired
from azora_nexus.events.audience import audience_of
from azora_nexus.events.envelope import Event, parse_event_id

if TYPE_CHECKING:
    from azora_nexus.events.history import EventFilter
from azora_nexus.events.taxonomy import TypeSelector

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
INDEX_NOT_FOUND = 27
RETENTION_COLLECTION = "retention"
WATERMARK_ID = "events"  # {_id, ms, seq}: the newest event id retention removed
AUDIENCE_ID = "audience"  # present once every archived document has `aud`
BACKFILL_BATCH = 1000
EXPIRE_BATCH = 5000
# Documents a find asks for when a read drops some: SecantusDB fetches and sorts every
# document of the range whatever the limit (its plans sort in memory), so a wide batch
# costs about what a narrow one does and saves finds.
READ_BATCH_MAX = 1000
T = TypeVar("T")

AUDIENCE_INDEX = [("aud", ASCENDING), ("ms", ASCENDING), ("seq", ASCENDING)]
ARCHIVE_INDEXES = [
    IndexModel([("ms", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("type", ASCENDING), ("ms", ASCENDING), ("seq", ASCENDING)]),
    IndexModel(AUDIENCE_INDEX),
]
# Key patterns of indexes older releases made on the archive: no read needs them once `aud`
# is backfilled (typed reads by audience, erasure by `aud`), and each costs every event.
IndexKey = tuple[tuple[str, int | str], ...]
OBSOLETE_INDEXES: frozenset[IndexKey] = frozenset(
    {
        (("userId", 1), ("ms", 1), ("seq", 1)),
        (("aud", 1), ("type", 1), ("ms", 1), ("seq", 1)),
        (("type", 1), ("_id", 1)),
        (("userId", 1), ("_id", 1)),
        (("timestamp", 1),),
    }
)


def to_document(event: Event) -> Document:
    ms, seq = event.order
    document: Document = {"_id": event.id, "ms": ms, "seq": seq, **event.to_wire()}
    del document["id"]
    document["aud"] = audience_of(event.user_id)
    return document


def from_document(document: Document) -> Event:
    body = {k: v for k, v in document.items() if k != "aud"}
    return Event.from_wire({**body, "id": document["_id"]})


def selectors(
    audiences: tuple[str, ...] | None, types: TypeSelector | None
) -> list[dict[str, Any]]:
    """One equality prefix per index range to read: one per audience, whatever the types
    (the reader keeps those it wants, `_read`); else one per type (None: one for all)."""
    if audiences is not None:
        return [{"aud": a} for a in audiences]
    return [{}] if types is None else [{"type": t} for t in types.expand()]


def _range(start_ms: int | None, before_ms: int | None) -> dict[str, Any]:
    """A plain range on `ms` (what the index serves best); the seq edges are cut in Python.

    The upper bound is `$lt` the next millisecond, never `$lte`: SecantusDB 0.7.0b3 treats
    `$lte` on a field after an equality prefix of a compound index (`aud`, `type`) as `$lt`,
    which dropped the events sharing `before`'s millisecond from a user's resume."""
    bounds: dict[str, int] = {}
    if start_ms is not None:
        bounds["$gte"] = start_ms
    if before_ms is not None:
        bounds["$lt"] = before_ms + 1
    return {"ms": bounds} if bounds else {}


def _key(index: Mapping[str, Any]) -> IndexKey:
    """An index's key pattern; orders as ints (the server may answer 1.0), or "text" etc."""
    return tuple(
        (str(name), order if isinstance(order, str) else int(order))
        for name, order in index["key"].items()
    )


@dataclass(frozen=True)
class Archive:
    """Writes events to, and reads them back from, the `events` collection."""

    documents: Documents
    # Whether every document has `aud` (seen once, true for good: new ones always have it).
    _audience: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    async def create_indexes(self) -> None:
        """The indexes the reads below need (idempotent), and once `aud` is backfilled no
        other: the obsolete ones an older release made are dropped."""
        await self.documents.with_retry(
            partial(self.documents.events.create_indexes, ARCHIVE_INDEXES)
        )
        if await self.audience_ready():
            await self._drop_obsolete_indexes()

    async def _drop_obsolete_indexes(self) -> None:
        """Drop those of `OBSOLETE_INDEXES` present (by key pattern, whatever their name);
        one another node dropped meanwhile is no error."""
        events = self.documents.events
        obsolete = [
            i["name"] async for i in await events.list_indexes() if _key(i) in OBSOLETE_INDEXES
        ]
        for name in obsolete:
            try:
                await events.drop_index(name)
            except OperationFailure as exc:
                if exc.code != INDEX_NOT_FOUND:
                    raise
            else:  # an operator sees why an index of theirs went
                logger.info("event archive: dropped index %s, which no read uses", name)

    async def store(self, events: Sequence[Event]) -> None:
        """Every event durably archived (journaled), once however often it is stored."""
        if not events:
            return
        collection = self.documents.events.with_options(write_concern=WriteConcern(j=True))
        documents = [to_document(e) for e in events]
        try:
            await self.documents.with_retry(
                partial(collection.insert_many, documents, ordered=False)
            )
        except BulkWriteError as exc:
            # Another archiver (or this one, before a crash) got there first: nothing to do.
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors) or exc.details.get(
                "writeConcernErrors"
            ):
                raise

    async def missing(self, ids: Sequence[str]) -> list[str]:
        """Those of `ids` the archive does not hold."""
        if not ids:
            return []
        cursor = self.documents.events.find({"_id": {"$in": list(ids)}}, {"_id": 1})
        found = {document["_id"] async for document in cursor}
        return [i for i in ids if i not in found]

    async def removed_through(self) -> tuple[int, int] | None:
        """The newest event id retention removed (as `(ms, seq)`); None when none was."""
        marker = await self._markers().find_one({"_id": WATERMARK_ID})
        return None if marker is None else (int(marker["ms"]), int(marker["seq"]))

    async def require_kept_after(self, after: str | None) -> None:
        """HistoryExpired when an event after `after` was removed by retention.

        Bounded by the node's mongo breaker, as `read` is: unguarded, the first read after
        MongoDB froze waited out the driver's socket timeout (5 x the backend timeout)."""
        if after is None:
            return
        removed = await self._guarded(self.removed_through)
        if removed is not None and parse_event_id(after) < removed:
            raise HistoryExpired(
                f"events after {after} are older than the archive keeps; "
                "read again without `after` (from the oldest kept)"
            )

    async def expire_before(self, cutoff_ms: int) -> int:
        """Remove every event older than `cutoff_ms`; how many were removed.

        Batch by batch, oldest first; the watermark goes past each batch (journaled)
        before the batch goes, so a reader never meets the hole unflagged. One node at a
        time runs this (retention's lock), so reading and raising the mark is safe.
        """
        removed = 0
        while True:
            cursor = (
                self.documents.events.find(
                    {"ms": {"$lt": cutoff_ms}}, {"_id": 1, "ms": 1, "seq": 1}
                )
                .sort([("ms", ASCENDING), ("seq", ASCENDING)])
                .limit(EXPIRE_BATCH)
            )
            batch = [document async for document in cursor]
            if not batch:
                return removed
            newest = (int(batch[-1]["ms"]), int(batch[-1]["seq"]))
            current = await self.removed_through()
            if current is None or current < newest:
                await self._markers().replace_one(
                    {"_id": WATERMARK_ID},
                    {"_id": WATERMARK_ID, "ms": newest[0], "seq": newest[1]},
                    upsert=True,
                )
            ids = [document["_id"] for document in batch]
            result = await self.documents.events.delete_many({"_id": {"$in": ids}})
            removed += result.deleted_count

    def _markers(self) -> AsyncCollection[Document]:
        collection = self.documents.database[RETENTION_COLLECTION]
        return collection.with_options(write_concern=WriteConcern(j=True))

    async def oldest(self) -> Event | None:
        """The oldest event the archive still holds."""
        document = await self.documents.events.find_one(
            {}, sort=[("ms", ASCENDING), ("seq", ASCENDING)]
        )
        return None if document is None else from_document(document)

    async def backfill_audience(self) -> int:
        """Give `aud` to every document archived before it existed (once: a marker records
        that it is done); how many were updated."""
        if await self.audience_ready():
            return 0
        updated = 0
        cursor = self.documents.events.find({"aud": {"$exists": False}}, {"userId": 1})
        batch: list[UpdateOne] = []
        async for document in cursor:
            user_id = document.get("userId")
            audience = audience_of(None if user_id is None else str(user_id))
            batch.append(UpdateOne({"_id": document["_id"]}, {"$set": {"aud": audience}}))
            if len(batch) == BACKFILL_BATCH:
                updated += (await self.documents.events.bulk_write(batch)).modified_count
                batch = []
        if batch:
            updated += (await self.documents.events.bulk_write(batch)).modified_count
        # The marker promises `aud` on every document and its index there (erasure's hinted
        # delete relies on both).
        await self.create_indexes()
        await self._markers().replace_one({"_id": AUDIENCE_ID}, {"_id": AUDIENCE_ID}, upsert=True)
        self._audience["ready"] = True
        await self._drop_obsolete_indexes()  # nothing reads through them any more
        return updated

    async def audience_ready(self) -> bool:
        if not self._audience.get("ready"):
            marker = await self._markers().find_one({"_id": AUDIENCE_ID})
            self._audience["ready"] = marker is not None
        return self._audience["ready"]

    async def read(
        self,
        *,
        after: str | None,
        before: str | None,
        events_filter: EventFilter,
        limit: int,
    ) -> list[Event]:
        """Up to `limit` archived events the filter lets through in (after, before), oldest
        first.

        Bounded by the node's mongo breaker: a MongoDB that does not answer costs one
        timeout, then a 503 at once until it is back."""
        return await self._guarded(
            partial(self._read_filtered, after, before, events_filter, limit)
        )

    async def _guarded(self, operation: Callable[[], Awaitable[T]]) -> T:
        guard = self.documents.guard
        return await operation() if guard is None else await guard.call(operation)

    async def _read_filtered(
        self, after: str | None, before: str | None, events_filter: EventFilter, limit: int
    ) -> list[Event]:
        audiences = events_filter.audiences
        if audiences.everyone:
            queries = selectors(None, events_filter.types)
        elif await self.audience_ready():
            queries = selectors(audiences.keys, events_filter.types)
        else:  # documents without `aud` remain: the query that does not need it
            queries = [events_filter.mongo_query()]
        # By audience, the types are kept in Python: the ranges hold others too.
        drops = not audiences.everyone and events_filter.types is not None
        pages = [
            await self._read(
                after=after,
                before=before,
                query=q,
                keep=events_filter.matches,
                limit=limit,
                batch=max(limit + 1, READ_BATCH_MAX) if drops else limit + 1,
            )
            for q in queries
        ]
        return list(heapq.merge(*pages, key=lambda e: e.order))[:limit]

    async def _read(
        self,
        *,
        after: str | None,
        before: str | None,
        query: dict[str, Any],
        keep: Callable[[Event], bool],
        limit: int,
        batch: int,
    ) -> list[Event]:
        """Up to `limit` events of the index range `query` names that `keep` lets through,
        in (after, before), oldest first: the range is read batch by batch until `limit`
        are kept or it ends (`batch` documents a find at first, more after).

        Only a read by audience that wants some types drops events here (no index has
        `(aud, type)`): what it reads beyond what it returns is bounded by the events of
        its audiences in the range (the reader's own and the public ones), never everyone's.
        """
        low = parse_event_id(after) if after is not None else (-1, -1)
        high = parse_event_id(before) if before is not None else None
        start = None if after is None else low[0]
        before_ms = None if high is None else high[0]
        found: list[Event] = []
        # Each batch starts at the last one's last millisecond, past the documents already
        # read in it (`skip`); those at or before `after` (or read twice) are cut by `low`.
        skip = 0
        while True:
            cursor = (
                self.documents.events.find({**query, **_range(start, before_ms)})
                .sort([("ms", ASCENDING), ("seq", ASCENDING)])
                .skip(skip)
                .limit(batch)
            )
            documents = [d async for d in cursor]
            for document in documents:
                order = (document["ms"], document["seq"])
                if high is not None and order >= high:
                    return found
                if order <= low:
                    continue
                low = order
                event = from_document(document)
                if keep(event):
                    found.append(event)
                    if len(found) == limit:
                        return found
            if len(documents) < batch:
                return found
            last = documents[-1]["ms"]
            same = sum(1 for d in documents if d["ms"] == last)
            skip, start = (skip + same if last == start else same), last
            batch = max(batch, min(2 * batch, READ_BATCH_MAX))
