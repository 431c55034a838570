"""The archive: every event reaches Mongo once, and history reads past the stream's cap."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from functools import partial

import pytest
from pymongo import ASCENDING, IndexModel
from redis.asyncio import Redis

from azora_nexus.config import Settings
from azora_nexus.documents.client import Documents, open_documents
from azora_nexus.errors import HistoryExpired
from azora_nexus.events import archive as archive_module
from azora_nexus.events.archive import RETENTION_COLLECTION, Archive, to_document
from azora_nexus.events.archiver import Archiver
from azora_nexus.events.envelope import Event
from azora_nexus.events.history import EventFilter
from azora_nexus.events.taxonomy import TypeSelector
from azora_nexus.nexus import Nexus, open_nexus
from tests.support.waiting import eventually


async def archived(nexus: Nexus) -> int:
    return await nexus.documents.events.count_documents({})


async def test_every_event_is_archived_under_its_id(nexus: Nexus) -> None:
    published = [
        await nexus.events.publish(
            "system.alert", {"n": i}, source="tests", user_id="u1" if i else None
        )
        for i in range(30)
    ]
    await eventually(lambda: _equals(archived(nexus), 30))
    documents = [d async for d in nexus.documents.events.find({}).sort("ms", 1)]
    assert [d["_id"] for d in documents] == [e.id for e in published]
    assert documents[1] == {
        "_id": published[1].id,
        "ms": published[1].order[0],
        "seq": published[1].order[1],
        "type": "system.alert",
        "payload": {"n": 1},
        "source": "tests",
        "timestamp": published[1].timestamp_ms,
        "userId": "u1",
        "aud": "u:u1",  # who may see it: the index a user's history reads
    }
    assert documents[0]["aud"] == "*"
    assert "userId" not in documents[0]


async def test_events_published_while_no_archiver_runs_are_archived_later(
    settings: Settings,
) -> None:
    async with open_nexus(settings, background=False) as quiet:
        for i in range(20):
            await quiet.events.publish("system.alert", {"n": i}, source="tests")
    async with open_nexus(settings) as nexus:
        await eventually(lambda: _equals(archived(nexus), 20))


async def test_archiving_the_same_events_twice_keeps_one_copy(nexus: Nexus) -> None:
    events = [await nexus.events.publish("system.alert", {"n": i}, source="t") for i in range(5)]
    await eventually(lambda: _equals(archived(nexus), 5))
    await Archive(nexus.documents).store(events)
    assert await archived(nexus) == 5


async def test_history_continues_seamlessly_from_the_archive_past_the_stream_cap(
    settings: Settings, redis: Redis
) -> None:
    capped = settings.model_copy(update={"stream_maxlen": 100})
    async with open_nexus(capped) as nexus:
        published = []
        for i in range(450):
            event_type = "system.alert" if i % 3 else "system.health.check"
            user_id = "u1" if i % 2 else None
            published.append(
                await nexus.events.publish(event_type, {"n": i}, source="t", user_id=user_id)
            )
            if i % 50 == 49:
                # The archiver must keep up with a cap this small (100k in production).
                await eventually(partial(_archived_at_least, nexus, i + 1))
        on_stream = await redis.xlen("azora:events")
        assert on_stream <= 200  # MAXLEN ~ trims whole nodes of 100 entries
        ids = [e.id for e in published]
        assert [e.id for e in await nexus.events.read(None, 1000)] == ids
        assert [e.id for e in await nexus.events.read(ids[9], 100)] == ids[10:110]
        tail = await nexus.events.read(ids[-on_stream - 5], 10)
        assert [e.id for e in tail] == ids[-on_stream - 4 : -on_stream + 6]
        checks = EventFilter(types=TypeSelector.parse(["system.health.check"]), viewer="u2")
        expected = [e.id for e in published if e.type == "system.health.check" and not e.user_id]
        assert [e.id for e in await nexus.events.read(None, 1000, checks)] == expected


async def test_archive_reads_in_id_order_not_string_order(settings: Settings) -> None:
    async with open_documents(settings.mongodb_uri or "") as documents:
        archive = Archive(documents)
        await archive.create_indexes()
        events = [
            Event(id=f"5-{seq}", type="system.alert", payload={}, source="t", timestamp_ms=5)
            for seq in (9, 10, 100)
        ]
        await archive.store(events)
        found = await archive.read(after="5-9", before=None, events_filter=EventFilter(), limit=10)
        assert [e.id for e in found] == ["5-10", "5-100"]


@pytest.mark.parametrize(
    "events_filter",
    [
        EventFilter(),
        EventFilter(types=TypeSelector.parse(["system.*"])),
        EventFilter(viewer="u1"),
        EventFilter(user_id="u1"),
        EventFilter(types=TypeSelector.parse(["system.alert"]), viewer="u1"),
    ],
    ids=["everyone", "typed", "viewer", "user", "typed-viewer"],
)
async def test_archive_reads_up_to_before_within_its_millisecond(
    settings: Settings, events_filter: EventFilter
) -> None:
    """A resume reads the archive up to the stream's oldest entry, which often shares its
    millisecond with the newest archived one: that one must not be lost, whatever index
    the filter's query goes through."""
    async with open_documents(settings.mongodb_uri or "") as documents:
        archive = Archive(documents)
        await archive.create_indexes()
        await archive.backfill_audience()  # as a node does at start: reads use `aud`
        ids = ["5-0", "6-0", "7-0", "7-1", "7-2", "8-0"]
        await archive.store(
            [
                Event(
                    id=i, type="system.alert", payload={}, source="t", timestamp_ms=5, user_id="u1"
                )
                for i in ids
            ]
        )
        found = await archive.read(after="5-0", before="7-2", events_filter=events_filter, limit=10)
        assert [e.id for e in found] == ["6-0", "7-0", "7-1"]


def event(n: int, event_type: str, user_id: str | None) -> Event:
    """The `n`-th event, nine to a millisecond: pages start and end inside one."""
    event_id = f"{1000 + n // 9}-{n % 9}"
    return Event(
        id=event_id, type=event_type, payload={"n": n}, source="t", timestamp_ms=1, user_id=user_id
    )


@pytest.mark.parametrize(
    "events_filter",
    [
        EventFilter(types=TypeSelector.parse(["system.alert"]), viewer="u1"),
        EventFilter(types=TypeSelector.parse(["system.alert"]), user_id="u1"),
        EventFilter(types=TypeSelector.parse(["system.alert", "finance.*"]), viewer="u2"),
    ],
    ids=["viewer", "user", "viewer-many-types"],
)
async def test_a_typed_read_by_audience_pages_past_the_types_it_does_not_want(
    settings: Settings, events_filter: EventFilter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read limited to audiences and types goes through `(aud, ms, seq)` and keeps the
    types in Python: each page still holds `limit` matching events though far more than
    `limit` of the audience's other types lie between them, and `after`/`before` hold."""
    others = ("finance.wallet.created", "system.health.check")
    stored = [
        event(n, "system.alert" if n % 37 < 3 else others[n % 2], ("u1", "u2", None)[n % 3])
        for n in range(600)
    ]
    before = stored[500].id  # inside its millisecond
    expected = [e.id for e in stored[:500] if events_filter.matches(e)]
    # Finds of 8 documents (nine share each millisecond): a page takes many finds, and
    # a find may start and end inside one millisecond.
    monkeypatch.setattr(archive_module, "READ_BATCH_MAX", 8)
    async with open_documents(settings.mongodb_uri or "") as documents:
        archive = Archive(documents)
        await archive.create_indexes()
        await archive.backfill_audience()
        await archive.store(stored)
        pages: list[list[str]] = []
        after: str | None = None
        while not pages or len(pages[-1]) == 4:
            page = await archive.read(
                after=after, before=before, events_filter=events_filter, limit=4
            )
            pages.append([e.id for e in page])
            after = page[-1].id if page else after
    assert [i for page in pages for i in page] == expected
    assert len(pages) == len(expected) // 4 + 1


# The indexes an archive had before it kept three (the archive's and documents/client.py's).
OLD_INDEXES = [
    IndexModel([("ms", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("type", ASCENDING), ("ms", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("userId", ASCENDING), ("ms", ASCENDING), ("seq", ASCENDING)], sparse=True),
    IndexModel([("aud", ASCENDING), ("ms", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("aud", ASCENDING), ("type", ASCENDING), ("ms", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("type", ASCENDING), ("_id", ASCENDING)]),
    IndexModel([("userId", ASCENDING), ("_id", ASCENDING)], sparse=True),
    IndexModel([("timestamp", ASCENDING)]),
]
KEPT = [["_id"], ["aud", "ms", "seq"], ["ms", "seq"], ["type", "ms", "seq"]]


async def index_keys(documents: Documents) -> list[list[str]]:
    return sorted([list(i["key"]) async for i in await documents.events.list_indexes()])


async def test_an_archive_has_three_indexes_and_an_older_one_drops_the_rest_once_backfilled(
    settings: Settings,
) -> None:
    """Each index costs every archived event a write. A node indexes a new archive three
    ways; an archive an older release indexed eight ways keeps them until `aud` is
    backfilled (reads and erasure go by `userId` until then), then the three."""
    async with open_documents(settings.mongodb_uri or "") as documents:
        archive = Archive(documents)
        await archive.create_indexes()
        await archive.backfill_audience()
        assert await index_keys(documents) == KEPT
    async with open_documents(settings.mongodb_uri or "") as documents:
        await documents.events.drop()
        await documents.database[RETENTION_COLLECTION].drop()
        await documents.events.create_indexes(OLD_INDEXES)
        legacy = [to_document(event(n, "system.alert", "u1")) for n in range(5)]
        await documents.events.insert_many(
            [{k: v for k, v in d.items() if k != "aud"} for d in legacy]
        )
        archive = Archive(documents)
        await archive.create_indexes()
        assert len(await index_keys(documents)) == len(OLD_INDEXES) + 1  # none dropped yet
        assert await archive.backfill_audience() == 5
        assert await index_keys(documents) == KEPT
        await Archive(documents).create_indexes()  # the next start: none left to drop
        assert await index_keys(documents) == KEPT


async def test_the_stream_waits_for_the_archiver_before_it_trims(settings: Settings) -> None:
    """Events published faster than they are archived (MongoDB down, an archiver behind)
    stay on the stream past its cap until archived: before, the cap dropped 550 of these
    600 unread and history had a hole."""
    capped = settings.model_copy(update={"stream_maxlen": 50, "stream_hard_maxlen": 1000})
    async with open_nexus(capped, background=False) as nexus:  # no archiver runs yet
        archiver = Archiver(nexus.redis, Archive(nexus.documents))
        await archiver.ensure_group()
        published = [
            (await nexus.events.publish("system.alert", {"n": i}, source="t")).id
            for i in range(600)
        ]
        assert await nexus.redis.xlen("azora:events") == 600
        running = asyncio.create_task(archiver.run())
        try:
            await eventually(partial(_archived_at_least, nexus, 600))
            await nexus.events.publish("system.alert", {"n": "next"}, source="t")  # trims now
            assert await nexus.redis.xlen("azora:events") <= 50 + 5 + 1
            viewer = EventFilter(viewer="u1")
            found = await nexus.events.read(published[0], 1000, viewer)
            assert [e.id for e in found][:599] == published[1:]
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


async def test_past_its_hard_cap_the_stream_drops_unarchived_events_and_says_so(
    settings: Settings,
) -> None:
    """Memory stays bounded: past the hard cap the oldest go unarchived, and a read from
    before them is history_expired (410) rather than a silent gap."""
    capped = settings.model_copy(update={"stream_maxlen": 50, "stream_hard_maxlen": 200})
    async with open_nexus(capped, background=False) as nexus:
        archiver = Archiver(nexus.redis, Archive(nexus.documents))
        await archiver.ensure_group()
        published = [
            (await nexus.events.publish("system.alert", {"n": i}, source="t")).id
            for i in range(400)
        ]
        assert await nexus.redis.xlen("azora:events") <= 200 + 5
        lost = await nexus.events.stream.unarchived_through()
        assert lost is not None
        with pytest.raises(HistoryExpired):
            await nexus.events.read(published[0], 10)
        with pytest.raises(HistoryExpired):
            await nexus.events.history.require_kept_after(published[0])
        newest_lost = published.index(lost)
        running = asyncio.create_task(archiver.run())
        try:
            await eventually(partial(_archived_at_least, nexus, 400 - newest_lost - 1))
            since_the_hole = [e.id for e in await nexus.events.read(None, 1000)]
            assert since_the_hole == published[newest_lost + 1 :]
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


async def _archived_at_least(nexus: Nexus, count: int) -> bool:
    return await archived(nexus) >= count


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
