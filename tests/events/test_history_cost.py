"""A user's history costs what its own page costs, not what everyone's events cost.

Thousands of other users' events lie between a user and its own: the read must reach its
events through the audience index on the stream (counted: the entries the stream hands
back) and through index ranges in the archive (checked: MongoDB's explain of every query
the read sent, documents examined). Before the index, the stream was scanned 1,000 entries
at a time and the archive query was a `$and` no index serves (a collection scan).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis

from azora_nexus.documents.client import Document, Documents
from azora_nexus.events.archive import Archive, to_document
from azora_nexus.events.envelope import Event
from azora_nexus.events.history import EventFilter, History
from azora_nexus.events.outbox import new_event
from azora_nexus.events.stream import EventStream
from azora_nexus.events.taxonomy import TypeSelector

OTHERS = 2000
# Fewer in the archive: SecantusDB takes its time to drop a database with many documents.
ARCHIVED = 400
ME = "me"


@dataclass(frozen=True)
class CountingStream(EventStream):
    """The real stream, counting the entries its reads hand to history."""

    handed: list[int] = field(default_factory=list)

    async def window_after(self, after: str | None, count: int) -> tuple[str | None, list[Event]]:
        first, chunk = await super().window_after(after, count)
        self.handed.append(len(chunk))
        return first, chunk

    async def visible_after(
        self, audiences: Sequence[str], after: str | None, count: int
    ) -> tuple[str | None, list[Event]]:
        first, chunk = await super().visible_after(audiences, after, count)
        self.handed.append(len(chunk))
        return first, chunk


class Finds(monitoring.CommandListener):
    """The `find` commands a client sent."""

    def __init__(self) -> None:
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "events":
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def watched(mongodb_uri: str) -> AsyncIterator[tuple[Documents, Finds]]:
    finds = Finds()
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_uri, event_listeners=[finds])
    try:
        yield Documents(client=client, database=client.get_default_database()), finds
    finally:
        await client.close()


async def append(stream: EventStream, n: int, user_id: str | None, kind: str) -> list[Event]:
    return [
        await stream.append(new_event(kind, {"n": i}, source="tests", user_id=user_id))
        for i in range(n)
    ]


async def others(stream: EventStream, n: int) -> list[Event]:
    return [
        await stream.append(
            new_event("finance.wallet.created", {"n": i}, source="tests", user_id=f"o{i % 40}")
        )
        for i in range(n)
    ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def visible(events: Sequence[Event], viewer: str) -> list[str]:
    return [e.id for e in events if e.user_id in (None, viewer)]


async def test_a_users_page_from_the_stream_reads_only_its_own_audiences(
    redis: Redis, watched: tuple[Documents, Finds]
) -> None:
    documents, _ = watched
    stream = CountingStream(redis)
    await stream.index_backlog()  # an empty stream: the index is complete from the start
    history = History(stream=stream, archive=Archive(documents))
    everything = await others(stream, OTHERS // 2)
    everything += await append(stream, 1, ME, "finance.transaction.completed")
    everything += await others(stream, OTHERS // 2)
    everything += await append(stream, 1, None, "system.alert")

    page = await history.read(None, 1, EventFilter(viewer=ME))
    assert [e.id for e in page] == visible(everything, ME)[:1]
    assert sum(stream.handed) <= 2, stream.handed  # was every entry up to it: 1,001
    stream.handed.clear()
    page = await history.read(None, 100, EventFilter(viewer=ME))
    assert [e.id for e in page] == visible(everything, ME)
    assert sum(stream.handed) <= 3, stream.handed  # was all 2,002
    stream.handed.clear()
    typed = EventFilter(viewer=ME, types=TypeSelector.parse(["system.*"]))
    assert [e.id for e in await history.read(None, 10, typed)] == [everything[-1].id]
    assert sum(stream.handed) <= 3, stream.handed
    # Someone else's events: nothing, without reading anything.
    stream.handed.clear()
    assert await history.read(None, 10, EventFilter(viewer=ME, user_id="o1")) == []
    assert stream.handed == []
    # An admin asking for one user's events gets them through the same index.
    mine = await history.read(None, 10, EventFilter(user_id=ME))
    assert [e.user_id for e in mine] == [ME]


async def test_the_outbox_relay_path_is_indexed_too(redis: Redis, watched: Any) -> None:
    documents, _ = watched
    stream = CountingStream(redis)
    await stream.index_backlog()
    await others(stream, 50)
    event = new_event("finance.transaction.completed", {"n": 1}, source="tests", user_id=ME)
    [relayed] = await stream.append_outbox([(7, event)])
    history = History(stream=stream, archive=Archive(documents))
    assert [e.id for e in await history.read(None, 5, EventFilter(viewer=ME))] == [relayed]
    assert sum(stream.handed) == 1


async def test_entries_from_before_the_index_are_read_correctly_then_indexed(
    redis: Redis, watched: Any
) -> None:
    documents, _ = watched
    stream = CountingStream(redis)
    # Written as the code before the index wrote them: a bare XADD, no member.
    old = [
        new_event("finance.wallet.created", {"n": i}, source="t", user_id=ME if i == 7 else "x")
        for i in range(30)
    ]
    ids = [_text(await redis.xadd(stream.key, {"e": e.encode()})) for e in old]
    history = History(stream=stream, archive=Archive(documents))
    assert [e.id for e in await history.read(None, 5, EventFilter(viewer=ME))] == [ids[7]]
    assert sum(stream.handed) == 30  # not ready: the stream is scanned, but nothing is missed
    assert await stream.index_backlog() == 30
    stream.handed.clear()
    assert [e.id for e in await history.read(None, 5, EventFilter(viewer=ME))] == [ids[7]]
    assert sum(stream.handed) == 1


async def explain(documents: Documents, find: dict[str, Any]) -> dict[str, Any]:
    command = {k: v for k, v in find.items() if k in ("find", "filter", "sort", "skip", "limit")}
    answer: dict[str, Any] = await documents.database.command(
        {"explain": command, "verbosity": "executionStats"}
    )
    return answer


async def test_a_users_page_from_the_archive_is_index_ranges_of_its_audiences(
    redis: Redis, watched: tuple[Documents, Finds]
) -> None:
    documents, finds = watched
    archive = Archive(documents)
    await archive.create_indexes()
    await archive.backfill_audience()
    stream = EventStream(redis, maxlen=20)  # a small cap: nearly everything is archived only
    await stream.index_backlog()
    everything = await others(stream, ARCHIVED // 2)
    everything += await append(stream, 1, ME, "finance.transaction.completed")
    everything += await others(stream, ARCHIVED // 2)
    everything += await append(stream, 1, None, "system.alert")
    everything += await others(stream, 60)  # the two are off the stream, in the archive only
    await archive.store(everything)
    assert int(await redis.xlen(stream.key)) < 60
    history = History(stream=stream, archive=archive)

    finds.commands.clear()
    page = await history.read(None, 1, EventFilter(viewer=ME))
    assert [e.id for e in page] == visible(everything, ME)[:1]
    page = await history.read(None, 100, EventFilter(viewer=ME))
    assert [e.id for e in page] == visible(everything, ME)
    assert finds.commands
    examined = 0
    for find in finds.commands:
        plan = await explain(documents, find)
        stats = plan["executionStats"]
        examined += stats["totalDocsExamined"]
        assert "COLLSCAN" not in str(plan["queryPlanner"]["winningPlan"]), find["filter"]
    # The queries examined the user's events and the public ones, none of the 460 others'
    # (the old `$and` query was a collection scan: every document, every time).
    assert examined <= 2 * len(finds.commands), (examined, finds.commands)


async def test_archived_documents_without_an_audience_are_served_then_backfilled(
    redis: Redis, watched: tuple[Documents, Finds]
) -> None:
    documents, _ = watched
    archive = Archive(documents)
    await archive.create_indexes()
    stream = EventStream(redis, maxlen=10)
    await stream.index_backlog()
    everything = await others(stream, 100)
    everything += await append(stream, 1, ME, "finance.transaction.completed")
    everything += await others(stream, 50)
    # Archived as before `aud` existed.
    legacy = [{k: v for k, v in to_document(e).items() if k != "aud"} for e in everything]
    await documents.events.insert_many(legacy)
    history = History(stream=stream, archive=archive)
    assert [e.id for e in await history.read(None, 5, EventFilter(viewer=ME))] == visible(
        everything, ME
    )
    assert await archive.backfill_audience() == len(everything)
    assert await documents.events.count_documents({"aud": {"$exists": False}}) == 0
    assert await documents.events.count_documents({"aud": f"u:{ME}"}) == 1
    assert await archive.backfill_audience() == 0  # once
    assert [e.id for e in await history.read(None, 5, EventFilter(viewer=ME))] == visible(
        everything, ME
    )
    assert [e.id for e in await history.read(None, 500, EventFilter())] == [
        e.id for e in everything
    ]
