"""Retention: outbox partitions go once published, archived and old; nothing else goes."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from azora_nexus.auth.tokens import Role
from azora_nexus.config import Settings
from azora_nexus.database.partitions import partitions
from azora_nexus.events.archive import Archive
from azora_nexus.events.models import OUTBOX_TABLE
from azora_nexus.events.outbox import add_event
from azora_nexus.events.relay import Relay, asyncpg_dsn
from azora_nexus.events.retention import Retention, partition_width_s
from azora_nexus.events.stream import EventStream, decode_entries
from azora_nexus.nexus import Nexus, open_nexus
from tests.conftest import token_for
from tests.support.server import serve_node
from tests.support.waiting import eventually

JOBS = 300


async def outbox_rows(database_url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows: int = await conn.fetchval("SELECT count(*) FROM outbox")
        return rows
    finally:
        await conn.close()


async def register(http: httpx.AsyncClient) -> str:
    body = {"email": "poster@example.com", "username": "poster", "password": "a long passphrase"}
    response = await http.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_outbox_rows_of_300_domain_events_go_within_a_minute_and_history_keeps_all(
    settings: Settings,
) -> None:
    settings = settings.model_copy(update={"outbox_retention_s": 5.0})
    async with serve_node(settings) as node, httpx.AsyncClient(base_url=node.url) as http:
        poster = {"Authorization": f"Bearer {await register(http)}"}
        for i in range(JOBS):
            job = {"title": f"job {i}", "budget": "10.00", "currency": "AZR"}
            response = await http.post("/api/jobs", json=job, headers=poster)
            assert response.status_code == 201, response.text
        assert await outbox_rows(settings.database_url or "") > 0

        async def outbox_empty() -> bool:
            return await outbox_rows(settings.database_url or "") == 0

        await eventually(outbox_empty, timeout_s=60, every_s=0.5)
        admin = {"Authorization": f"Bearer {node.token(Role.ADMIN)}"}
        query: dict[str, str | int] = {"type": "marketplace.job.posted", "limit": 1000}
        response = await http.get("/events", params=query, headers=admin)
        assert response.status_code == 200
        titles = [e["payload"]["title"] for e in response.json()["events"]]
        assert titles == [f"job {i}" for i in range(JOBS)]


def retention_for(nexus: Nexus, outbox_retention_s: float) -> Retention:
    return Retention(
        nexus.urls.database,
        Archive(nexus.documents),
        outbox_retention_s=outbox_retention_s,
        archive_retention_s=None,
    )


async def add_alerts(nexus: Nexus, count: int) -> None:
    async with nexus.db.transaction() as session:
        for i in range(count):
            await add_event(session, "system.alert", {"n": i}, source="tests")


async def relay_all(nexus: Nexus, redis: Redis) -> None:
    relay = Relay(nexus.urls.database, EventStream(redis))
    conn = await asyncpg.connect(relay.dsn)
    try:
        while await relay.relay_batch(conn):
            pass
    finally:
        await conn.close()


async def table_partitions(nexus: Nexus) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(nexus.urls.database))
    try:
        return [p.name for p in await partitions(conn, OUTBOX_TABLE)]
    finally:
        await conn.close()


async def test_rows_go_only_once_published_and_archived(settings: Settings, redis: Redis) -> None:
    async with open_nexus(settings, background=False) as nexus:
        retention = retention_for(nexus, 1.0)
        await retention.round()  # partitions made ahead: the rows land in a range
        await add_alerts(nexus, 5)
        await asyncio.sleep(3.0)  # past the retention and its partition's end

        await retention.round()
        assert await outbox_rows(nexus.urls.database) == 5, "unpublished rows were dropped"

        await relay_all(nexus, redis)
        await retention.round()
        assert await outbox_rows(nexus.urls.database) == 5, "unarchived rows were dropped"

        entries: Any = await redis.xrange("azora:events")
        await Archive(nexus.documents).store(decode_entries(entries)[:4])
        await retention.round()
        assert await outbox_rows(nexus.urls.database) == 5, "a partition went with one unarchived"

        await Archive(nexus.documents).store(decode_entries(entries))
        await retention.round()
        assert await outbox_rows(nexus.urls.database) == 0


async def test_unpublished_rows_in_the_default_partition_stay(
    settings: Settings, redis: Redis
) -> None:
    async with open_nexus(settings, background=False) as nexus:
        await add_alerts(nexus, 3)  # no range made yet: the default partition takes them
        await asyncio.sleep(2.0)
        retention = retention_for(nexus, 1.0)
        await retention.round()
        assert await outbox_rows(nexus.urls.database) == 3
        await relay_all(nexus, redis)
        entries: Any = await redis.xrange("azora:events")
        await Archive(nexus.documents).store(decode_entries(entries))
        await retention.round()
        assert await outbox_rows(nexus.urls.database) == 0
        assert "outbox_default" in await table_partitions(nexus)


async def test_partitions_are_made_ahead_of_the_clock(settings: Settings) -> None:
    async with open_nexus(settings, background=False) as nexus:
        retention = retention_for(nexus, 40.0)
        assert retention.width_s == partition_width_s(40.0) == 10
        await retention.round()
        names = await table_partitions(nexus)
        assert len(names) == 1 + retention.ahead_s // retention.width_s
        await retention.round()  # nothing more to make yet
        assert await table_partitions(nexus) == names
        # Ranges start after the clock; once the first has begun, rows land in ranges.
        await asyncio.sleep(1.1)
        await add_alerts(nexus, 1)
        conn = await asyncpg.connect(asyncpg_dsn(nexus.urls.database))
        try:
            assert await conn.fetchval("SELECT count(*) FROM outbox_default") == 0
        finally:
            await conn.close()


async def archived(nexus: Nexus) -> int:
    return await nexus.documents.events.count_documents({})


async def test_a_read_from_before_what_the_archive_keeps_is_refused_not_cut_short(
    nexus: Nexus, redis: Redis, client: httpx.AsyncClient
) -> None:
    published = [await nexus.events.publish("system.alert", {"n": i}, source="t") for i in range(8)]

    async def all_archived() -> bool:
        return await archived(nexus) == 8

    await eventually(all_archived)
    await redis.xtrim("azora:events", maxlen=2, approximate=False)  # the last two only
    removed = await Archive(nexus.documents).expire_before(published[4].order[0] + 1)
    assert removed == 5
    assert await archived(nexus) == 3

    admin = {"Authorization": f"Bearer {token_for(Role.ADMIN)}"}
    expired = await client.get("/events", params={"after": published[1].id}, headers=admin)
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "history_expired"
    kept = await client.get("/events", params={"after": published[4].id}, headers=admin)
    assert [e["id"] for e in kept.json()["events"]] == [e.id for e in published[5:]]
    oldest = await client.get("/events", headers=admin)
    assert [e["id"] for e in oldest.json()["events"]] == [e.id for e in published[5:]]


async def test_an_old_after_the_stream_still_covers_is_answered_in_full(
    nexus: Nexus, client: httpx.AsyncClient
) -> None:
    published = [await nexus.events.publish("system.alert", {"n": i}, source="t") for i in range(4)]
    await Archive(nexus.documents).expire_before(published[3].order[0] + 1)
    admin = {"Authorization": f"Bearer {token_for(Role.ADMIN)}"}
    response = await client.get("/events", params={"after": published[0].id}, headers=admin)
    assert [e["id"] for e in response.json()["events"]] == [e.id for e in published[1:]]


async def test_archive_retention_removes_events_older_than_it(
    settings: Settings, redis: Redis
) -> None:
    async with open_nexus(settings, background=False) as nexus:
        old = await nexus.events.publish("system.alert", {"n": 0}, source="t")
        await Archive(nexus.documents).store([old])
        await asyncio.sleep(1.5)
        new = await nexus.events.publish("system.alert", {"n": 1}, source="t")
        await Archive(nexus.documents).store([new])
        retention = Retention(
            nexus.urls.database,
            Archive(nexus.documents),
            outbox_retention_s=3600.0,
            archive_retention_s=1.0,
        )
        await retention.round()
        ids = [d["_id"] async for d in nexus.documents.events.find({})]
        assert ids == [new.id]
        assert await Archive(nexus.documents).removed_through() == old.order


async def test_a_busy_table_delays_partitions_to_the_next_round_without_failing(
    settings: Settings,
) -> None:
    async with open_nexus(settings, background=False) as nexus:
        writer = await asyncpg.connect(asyncpg_dsn(nexus.urls.database))
        try:
            # An open transaction that wrote to the outbox holds a lock DDL must wait for.
            transaction = writer.transaction()
            await transaction.start()
            await writer.execute("LOCK TABLE outbox IN ROW EXCLUSIVE MODE")
            retention = retention_for(nexus, 40.0)
            assert await retention.round()
            assert await table_partitions(nexus) == ["outbox_default"]
            await transaction.rollback()
        finally:
            await writer.close()
        await retention.round()
        assert len(await table_partitions(nexus)) == 4
