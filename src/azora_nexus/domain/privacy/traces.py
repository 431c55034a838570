"""Erasure outside PostgreSQL: the event stream, the Mongo archive and documents, the cache.

It runs after the erasing transaction commits, in an order that leaves no copy behind:
1. wait until the relay has put `system.user.erased` on the stream: the relay publishes in
   outbox order, so any row it read before the commit (unscrubbed) is on the stream by then;
2. wait until the archiver has stored everything up to that event in Mongo;
3. delete the stream entries for the user, and those for others that name the user (a
   stream entry cannot be rewritten) after handing their scrubbed copies to the archive;
4. in the archive, delete the user's events and scrub the others that name them;
5. delete the user's `activity` and `content` documents, and any cache entry of theirs
   left under an older cache epoch.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy import text

from azora_nexus.cache import keys
from azora_nexus.database.engine import Database
from azora_nexus.documents.client import Documents
from azora_nexus.domain.privacy.export import CONTENT_OWNER_FIELDS
from azora_nexus.domain.privacy.identity import Subject, Tombstone
from azora_nexus.events.archive import to_document
from azora_nexus.events.archiver import GROUP as ARCHIVE_GROUP
from azora_nexus.events.envelope import Event, parse_event_id
from azora_nexus.events.stream import STREAM_KEY

logger = logging.getLogger(__name__)

SCAN_CHUNK = 1000
POLL_S = 0.02
# Clocks of PostgreSQL (created_at) and of the nodes (event ids) may differ a little.
CLOCK_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class TraceStores:
    """Where traces of a user may remain besides PostgreSQL."""

    db: Database
    redis: Redis
    documents: Documents
    cache_prefix: str
    stream_key: str = STREAM_KEY
    wait_s: float = 10.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _published_id(stores: TraceStores, outbox_id: int) -> str | None:
    """The stream id the relay gave the outbox row; None if no relay got to it in time."""
    query = text("SELECT stream_id FROM outbox WHERE id = :id")
    try:
        async with asyncio.timeout(stores.wait_s):
            while True:
                async with stores.db.sessions() as session:
                    stream_id: str | None = await session.scalar(query, {"id": outbox_id})
                if stream_id is not None:
                    return stream_id
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        logger.warning("erasure: outbox row %d not relayed in time; scrubbing anyway", outbox_id)
        return None


async def _archived_past(stores: TraceStores, stream_id: str) -> bool:
    groups: Any = await stores.redis.xinfo_groups(stores.stream_key)
    group = next((g for g in groups if _text(g["name"]) == ARCHIVE_GROUP), None)
    if group is None:
        return True  # no archiver has ever run: nothing to wait for
    if parse_event_id(_text(group["last-delivered-id"])) < parse_event_id(stream_id):
        return False
    pending: Any = await stores.redis.xpending(stores.stream_key, ARCHIVE_GROUP)
    oldest = pending.get("min")
    return not pending["pending"] or parse_event_id(_text(oldest)) > parse_event_id(stream_id)


async def _wait_archived(stores: TraceStores, stream_id: str) -> None:
    """Until the archiver has stored (and acknowledged) every entry up to `stream_id`."""
    try:
        async with asyncio.timeout(stores.wait_s):
            while True:
                if await _archived_past(stores, stream_id):
                    return
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        logger.warning("erasure: archiver not past %s in time; scrubbing anyway", stream_id)
    except ResponseError:  # no stream yet
        return


async def scrub_stream(stores: TraceStores, subject: Subject, tomb: Tombstone) -> list[Event]:
    """Delete every stream entry naming the user; the scrubbed copies of those that were
    for someone else, for the archive."""
    uid = str(subject.id)
    doomed: list[str] = []
    kept: list[Event] = []
    start = "-"
    while True:
        entries: Any = await stores.redis.xrange(stores.stream_key, start, "+", count=SCAN_CHUNK)
        for entry_id, fields in entries:
            body = fields.get(b"e", fields.get("e")) if fields else None
            if body is None:
                continue
            event = orjson.loads(body)
            if event.get("userId") != uid and not subject.mentions(event):
                continue
            doomed.append(_text(entry_id))
            if event.get("userId") != uid:
                scrubbed = subject.scrub(event, tomb) | {"id": _text(entry_id)}
                kept.append(Event.from_wire(scrubbed))
        if len(entries) < SCAN_CHUNK:
            break
        start = f"({_text(entries[-1][0])}"
    for at in range(0, len(doomed), SCAN_CHUNK):
        await stores.redis.xdel(stores.stream_key, *doomed[at : at + SCAN_CHUNK])
    return kept


async def scrub_archive(
    stores: TraceStores,
    subject: Subject,
    tomb: Tombstone,
    kept: list[Event],
    *,
    since: datetime,
) -> None:
    """The archive keeps no event for the user and no mention of them in anyone else's."""
    events = stores.documents.events
    await events.delete_many({"userId": str(subject.id)})
    for event in kept:
        document = to_document(event)
        await events.replace_one({"_id": document["_id"]}, document, upsert=True)
    since_ms = int((since - CLOCK_SLACK).timestamp() * 1000)
    naming = [
        document
        async for document in events.find({"ms": {"$gte": since_ms}})
        if subject.mentions({k: v for k, v in document.items() if k != "_id"})
    ]
    for document in naming:
        scrubbed = subject.scrub(document, tomb) | {"_id": document["_id"]}
        await events.replace_one({"_id": document["_id"]}, scrubbed)


async def scrub_documents(stores: TraceStores, subject: Subject) -> None:
    """The user's activity and content documents are deleted."""
    uid = str(subject.id)
    await stores.documents.activity.delete_many({"userId": uid})
    await stores.documents.content.delete_many({"$or": [{f: uid} for f in CONTENT_OWNER_FIELDS]})


async def scrub_cache(stores: TraceStores, subject: Subject) -> None:
    """Cache values and leases of the user under any epoch, current or abandoned."""
    for key_pattern in (keys.KeyPattern(keys.user(subject.id)), keys.user_keys(subject.id)):
        match = keys.match(stores.cache_prefix, "*", "*", key_pattern)
        found = [k async for k in stores.redis.scan_iter(match=match, count=SCAN_CHUNK)]
        if found:
            await stores.redis.delete(*found)


async def scrub_traces(
    stores: TraceStores,
    subject: Subject,
    tomb: Tombstone,
    *,
    event_outbox_id: int,
    since: datetime,
) -> None:
    """Remove what the committed erasure could not reach inside PostgreSQL (module doc)."""
    stream_id = await _published_id(stores, event_outbox_id)
    if stream_id is not None:
        await _wait_archived(stores, stream_id)
    kept = await scrub_stream(stores, subject, tomb)
    await scrub_archive(stores, subject, tomb, kept, since=since)
    await scrub_documents(stores, subject)
    await scrub_cache(stores, subject)
