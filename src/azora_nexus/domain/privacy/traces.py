"""Erasure outside PostgreSQL: the event stream, the Mongo archive and documents, the cache.

It runs after the erasing transaction commits, in an order that leaves no copy behind:
1. sweep the outbox again until quiet (writers racing the erasure, see `settle_outbox`);
2. wait until the relay has put every outbox row up to the newest onto the stream: a row it
   read before being rewritten is then on the stream, where step 4 finds it;
3. wait until the archiver has stored everything on the stream in Mongo;
4. delete the stream entries for the user, and those for others tied to the user by id
   (`Subject.ties`; a stream entry cannot be rewritten) after handing their scrubbed copies
   to the archive, then compact the stream (events/compaction.py: XDEL leaves the bytes);
5. in the archive, delete the user's events and scrub the others tied to them by id;
6. delete the user's `activity` and `content` documents, and any cache entry of theirs
   left under an older cache epoch;
7. (`rewrite_aof`, once per erasure or batch of them) when Redis keeps an append-only file,
   rewrite it: deleted entries stay in the AOF's history until then, on disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
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
from azora_nexus.domain.privacy.rows import rewrite_outbox
from azora_nexus.events.archive import AUDIENCE_INDEX, Archive, to_document
from azora_nexus.events.archiver import GROUP as ARCHIVE_GROUP
from azora_nexus.events.audience import audience_of, index_key
from azora_nexus.events.compaction import compact_stream
from azora_nexus.events.envelope import Event, parse_event_id
from azora_nexus.events.stream import STREAM_KEY

logger = logging.getLogger(__name__)

SCAN_CHUNK = 1000
POLL_S = 0.02
SETTLE_S = 0.1
SWEEPS = 5
AOF_BUSY = "already in progress"
# Clocks of PostgreSQL (created_at) and of the nodes (event ids) may differ a little.
CLOCK_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class TraceStores:
    """Where traces of a user may remain besides PostgreSQL."""

    db: Database
    redis: Redis
    documents: Documents
    cache_prefix: str
    # The HMAC key `system.user.erased` names the user with (identity.subject_key).
    subject_key: bytes
    stream_key: str = STREAM_KEY
    wait_s: float = 10.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def settle_outbox(stores: TraceStores, subject: Subject, tomb: Tombstone) -> int:
    """Sweep the outbox again until a sweep finds nothing; the newest outbox id then.

    A writer that read the user's rows before the erasure committed may still commit an
    event naming them just after it (a transfer reads its wallets' owners in one statement
    and posts in the next, which waits on the erasure's locks): such stragglers land within
    moments of the commit, and a sweep after a pause catches them.
    """
    newest: int | None = None
    for _ in range(SWEEPS):
        await asyncio.sleep(SETTLE_S)
        async with stores.db.transaction() as session:
            changed = await rewrite_outbox(session, subject, tomb)
            newest = await session.scalar(text("SELECT max(id) FROM outbox"))
        if not changed:
            break
    return newest or 0


async def _wait(stores: TraceStores, done: Callable[[], Awaitable[bool]], what: str) -> None:
    try:
        async with asyncio.timeout(stores.wait_s):
            while True:
                if await done():
                    return
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        logger.warning("erasure: %s did not happen in time; scrubbing anyway", what)


async def _relayed_up_to(stores: TraceStores, outbox_id: int) -> bool:
    query = text("SELECT EXISTS (SELECT 1 FROM outbox WHERE id <= :id AND published_at IS NULL)")
    async with stores.db.sessions() as session:
        return not await session.scalar(query, {"id": outbox_id})


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


async def _stream_end(stores: TraceStores) -> str | None:
    try:
        info: Any = await stores.redis.xinfo_stream(stores.stream_key)
    except ResponseError:  # no stream yet
        return None
    return _text(info["last-generated-id"])


async def scrub_stream(
    stores: TraceStores, subject: Subject, tomb: Tombstone, *, compact: bool = False
) -> list[Event]:
    """Delete every stream entry naming the user; the scrubbed copies of those that were
    for someone else, for the archive. The stream is compacted when an entry was deleted,
    or always with `compact` (a retry: an earlier attempt may have deleted and then failed
    before its compaction was done)."""
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
            if event.get("userId") != uid and not subject.ties(event.get("payload")):
                continue
            doomed.append(_text(entry_id))
            if event.get("userId") != uid:
                scrubbed = subject.scrub_event(event, tomb) | {"id": _text(entry_id)}
                kept.append(Event.from_wire(scrubbed))
        if len(entries) < SCAN_CHUNK:
            break
        start = f"({_text(entries[-1][0])}"
    for at in range(0, len(doomed), SCAN_CHUNK):
        await stores.redis.xdel(stores.stream_key, *doomed[at : at + SCAN_CHUNK])
    if doomed or compact:
        # XDEL only flags an entry: its bytes would stay in memory and in the AOF.
        await compact_stream(stores.redis, stores.stream_key)
    # The user's audience index (ids only) goes too: not even when they had events remains.
    await stores.redis.delete(index_key(audience_of(uid)))
    return kept


async def scrub_archive(
    stores: TraceStores,
    subject: Subject,
    tomb: Tombstone,
    kept: list[Event],
    *,
    since: datetime,
) -> None:
    """The archive keeps no event for the user, and anyone else's event tied to them by id
    names the tombstone instead."""
    events = stores.documents.events
    uid = str(subject.id)
    if await Archive(stores.documents).audience_ready():
        await events.delete_many({"aud": audience_of(uid)})  # the `(aud, ms, seq)` index
        # One archived before `aud` and brought back by a restore has none: that index holds
        # a missing field as null (it exists once the marker does: backfill_audience), and
        # the hint keeps SecantusDB from scanning the archive.
        await events.delete_many({"aud": None, "userId": uid}, hint=AUDIENCE_INDEX)
    else:
        # Only before the one-time backfill of `aud`: by the `userId` index an older release
        # made (dropped once the backfill is done), a scan of the archive without it.
        await events.delete_many({"userId": uid})
    for event in kept:
        document = to_document(event)
        await events.replace_one({"_id": document["_id"]}, document, upsert=True)
    since_ms = int((since - CLOCK_SLACK).timestamp() * 1000)
    tied = [
        document
        async for document in events.find({"ms": {"$gte": since_ms}})
        if subject.ties(document.get("payload"))
    ]
    for document in tied:
        await events.replace_one({"_id": document["_id"]}, subject.scrub_event(document, tomb))


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
    since: datetime,
    retry: bool = False,
) -> None:
    """Remove what the committed erasure could not reach inside PostgreSQL (module doc);
    `retry` when an earlier attempt may have stopped half way (pending.py)."""
    newest = await settle_outbox(stores, subject, tomb)
    await _wait(stores, lambda: _relayed_up_to(stores, newest), f"relaying outbox row {newest}")
    end = await _stream_end(stores)
    if end is not None:
        await _wait(stores, lambda: _archived_past(stores, end), f"archiving up to {end}")
    kept = await scrub_stream(stores, subject, tomb, compact=retry)
    await scrub_archive(stores, subject, tomb, kept, since=since)
    await scrub_documents(stores, subject)
    await scrub_cache(stores, subject)


def _persistence_flag(info: Any, name: str) -> bool:
    return str(info.get(name, "0")) not in ("0", "")


async def _aof_rewriting(redis: Redis) -> bool:
    info: Any = await redis.info("persistence")
    return _persistence_flag(info, "aof_rewrite_in_progress") or _persistence_flag(
        info, "aof_rewrite_scheduled"
    )


async def _started_rewrite(redis: Redis) -> bool:
    """True once a rewrite is started (or scheduled) by us; False while another runs."""
    try:
        await redis.bgrewriteaof()
    except ResponseError as exc:
        if AOF_BUSY not in str(exc):
            raise
        return False
    return True


async def _rewrite_finished(redis: Redis) -> None:
    while True:
        if not await _aof_rewriting(redis):
            return
        await asyncio.sleep(POLL_S)


async def rewrite_aof(stores: TraceStores) -> None:
    """When Redis keeps an append-only file, rewrite it (BGREWRITEAOF) and wait until the
    rewrite is done: the file then holds what Redis holds now, not the history of writes
    that still named the erased user. A rewrite already running may have started before
    the erasure, so it is waited out and another started. Never fails the erasure (it has
    committed): a server that refuses the command is logged."""
    info: Any = await stores.redis.info("persistence")
    if not _persistence_flag(info, "aof_enabled"):
        return
    try:
        async with asyncio.timeout(stores.wait_s):
            while not await _started_rewrite(stores.redis):
                await _rewrite_finished(stores.redis)
            await _rewrite_finished(stores.redis)
    except TimeoutError:
        logger.warning("erasure: the AOF rewrite did not finish in %.0f s", stores.wait_s)
    except ResponseError as exc:
        logger.warning("erasure: Redis refused to rewrite its AOF: %s", exc)
