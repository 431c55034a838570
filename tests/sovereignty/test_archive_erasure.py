"""Erasure in the Mongo archive: by `aud` once every document has it, by `userId` before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from azora_nexus.config import Settings
from azora_nexus.documents.client import Documents
from azora_nexus.domain.privacy.identity import Subject, Tombstone
from azora_nexus.domain.privacy.traces import TraceStores, scrub_archive
from azora_nexus.events.archive import Archive, to_document
from azora_nexus.events.envelope import Event
from azora_nexus.nexus import open_nexus

OTHER = "someone-else"


def events(user_id: str, start: int) -> list[Event]:
    """Ten events: the user's, another user's and public ones, interleaved."""
    owners = (user_id, OTHER, None)
    return [
        Event(
            id=f"{start + n}-0",
            type="system.alert",
            payload={"n": n},
            source="t",
            timestamp_ms=start + n,
            user_id=owners[n % 3],
        )
        for n in range(10)
    ]


async def owners(documents: Documents) -> list[str | None]:
    return sorted([d.get("userId") async for d in documents.events.find({})], key=lambda u: u or "")


async def test_erasure_removes_the_users_archived_events_before_and_after_the_backfill(
    settings: Settings,
) -> None:
    async with open_nexus(settings, background=False) as nexus:  # no archiver: no backfill
        documents = nexus.documents
        stores = TraceStores(
            db=nexus.db,
            redis=nexus.redis,
            documents=documents,
            cache_prefix=nexus.cache.options.prefix,
            subject_key=nexus.subject_key,
        )
        first, second = (Subject(id=uuid.uuid4(), email=f"{n}@x.test", username=n) for n in "ab")
        # Archived by an older release: no `aud`.
        legacy = [
            {k: v for k, v in to_document(e).items() if k != "aud"}
            for e in events(str(first.id), 1000)
        ]
        await documents.events.insert_many(legacy)
        archive = Archive(documents)
        assert not await archive.audience_ready()
        await scrub_archive(stores, first, Tombstone.new(), [], since=datetime.now(UTC))
        assert str(first.id) not in await owners(documents)
        assert len(await owners(documents)) == 6  # the others' and the public ones

        await archive.backfill_audience()
        await archive.store(events(str(second.id), 2000))
        await scrub_archive(stores, second, Tombstone.new(), [], since=datetime.now(UTC))
        assert await owners(documents) == [None] * 6 + [OTHER] * 6
