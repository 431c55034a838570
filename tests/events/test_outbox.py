"""The outbox: events leave with their transaction's commit, exactly once, in order."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from azora_nexus.config import Settings
from azora_nexus.database.engine import open_database
from azora_nexus.events.envelope import Event
from azora_nexus.events.models import OutboxEvent
from azora_nexus.events.outbox import add_event, new_event
from azora_nexus.events.relay import Relay
from azora_nexus.events.stream import EventStream, decode_entries
from azora_nexus.nexus import Nexus, open_nexus
from tests.support.waiting import eventually


async def stream_events(redis: Redis) -> list[Event]:
    entries: Any = await redis.xrange("azora:events")
    return decode_entries(entries)


async def is_marked(nexus: Nexus, outbox_id: int) -> bool:
    async with nexus.db.sessions() as session:
        stored = await session.get_one(OutboxEvent, outbox_id)
        return stored.published_at is not None


async def stream_has(redis: Redis, count: int) -> None:
    async def enough() -> bool:
        return len(await stream_events(redis)) >= count

    await eventually(enough)


async def test_a_committed_event_is_relayed_once_and_its_row_marked(
    nexus: Nexus, redis: Redis
) -> None:
    async with nexus.db.transaction() as session:
        row = await add_event(
            session, "finance.wallet.created", {"walletId": "w1"}, source="ledger", user_id="u1"
        )
    await eventually(lambda: is_marked(nexus, row.id))
    [event] = await stream_events(redis)
    assert (event.type, event.payload, event.source, event.user_id) == (
        "finance.wallet.created",
        {"walletId": "w1"},
        "ledger",
        "u1",
    )
    async with nexus.db.sessions() as session:
        stored = await session.get_one(OutboxEvent, row.id)
    assert stored.stream_id == event.id
    assert stored.published_at is not None
    # A later row is relayed after any second copy of the first would have been.
    async with nexus.db.transaction() as session:
        sentinel = await add_event(session, "system.alert", {"m": "sentinel"}, source="t")
    await eventually(lambda: is_marked(nexus, sentinel.id))
    assert [e.type for e in await stream_events(redis)] == [
        "finance.wallet.created",
        "system.alert",
    ]


async def test_a_rolled_back_transaction_emits_nothing(nexus: Nexus, redis: Redis) -> None:
    async def failing_write() -> None:
        async with nexus.db.transaction() as session:
            await add_event(session, "system.alert", {"message": "never"}, source="tests")
            await session.flush()
            raise RuntimeError("the write failed")

    with pytest.raises(RuntimeError):
        await failing_write()
    async with nexus.db.transaction() as session:
        await add_event(session, "system.alert", {"message": "after"}, source="tests")
    # "after" is the sentinel: committed later, relayed in commit order.
    await stream_has(redis, 1)
    assert [e.payload["message"] for e in await stream_events(redis)] == ["after"]


async def test_events_leave_in_commit_order(nexus: Nexus, redis: Redis) -> None:
    for batch in range(10):
        async with nexus.db.transaction() as session:
            for i in range(5):
                await add_event(session, "system.alert", {"n": batch * 5 + i}, source="tests")
    await stream_has(redis, 50)
    assert [e.payload["n"] for e in await stream_events(redis)] == list(range(50))


async def test_amounts_travel_as_strings(nexus: Nexus, redis: Redis) -> None:
    from decimal import Decimal

    async with nexus.db.transaction() as session:
        await add_event(
            session,
            "finance.transaction.completed",
            {"amount": Decimal("100.10"), "fee": {"amount": Decimal("0.01")}},
            source="ledger",
        )
    await stream_has(redis, 1)
    [event] = await stream_events(redis)
    assert event.payload == {"amount": "100.10", "fee": {"amount": "0.01"}}


async def test_relay_crash_between_xadd_and_marking_publishes_once(
    settings: Settings, redis: Redis
) -> None:
    async with open_nexus(settings, background=False) as quiet:
        async with quiet.db.transaction() as session:
            row = await add_event(session, "system.alert", {"message": "once"}, source="t")
        # A relay appends the row and dies before marking it: do exactly its first step.
        stream = EventStream(redis)
        event = new_event("system.alert", {"message": "once"}, source="t")
        [appended_id] = await stream.append_outbox([(row.id, event)])
    async with open_nexus(settings) as nexus:
        await eventually(lambda: is_marked(nexus, row.id))
        async with nexus.db.sessions() as session:
            stored = await session.get_one(OutboxEvent, row.id)
        assert stored.stream_id == appended_id
    assert [e.id for e in await stream_events(redis)] == [appended_id]
    assert await redis.hlen("azora:events:relayed") == 0


async def test_a_writer_killed_right_after_commit_still_delivers_once(
    nexus: Nexus, redis: Redis, settings: Settings
) -> None:
    writer = Path(__file__).with_name("outbox_writer.py")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(writer),
        settings.database_url or "",
        "survivor",
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await process.communicate()
    assert process.returncode == -9
    outbox_id = int(stdout)
    await eventually(lambda: is_marked(nexus, outbox_id))
    async with nexus.db.transaction() as session:
        sentinel = await add_event(session, "system.alert", {"message": "sentinel"}, source="t")
    await eventually(lambda: is_marked(nexus, sentinel.id))
    event, last = await stream_events(redis)
    assert (event.payload, last.payload) == ({"message": "survivor"}, {"message": "sentinel"})
    async with nexus.db.sessions() as session:
        stored = (await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))).all()
    assert [(r.id, r.stream_id) for r in stored] == [(outbox_id, event.id), (sentinel.id, last.id)]


async def test_only_one_relay_leads_and_another_takes_over(
    settings: Settings, redis: Redis
) -> None:
    url = settings.database_url or ""
    first = Relay(url, EventStream(redis), retry_s=0.2)
    second = Relay(url, EventStream(redis), retry_s=0.2)
    first_task = asyncio.create_task(first.run())
    await eventually(lambda: _true(first.is_leader))
    second_task = asyncio.create_task(second.run())
    await asyncio.sleep(0.6)
    assert not second.is_leader
    first_task.cancel()
    await asyncio.wait([first_task])
    await eventually(lambda: _true(second.is_leader), timeout_s=5)
    async with open_database(url) as db, db.transaction() as session:
        await add_event(session, "system.alert", {"message": "after failover"}, source="t")
    await stream_has(redis, 1)
    second_task.cancel()
    await asyncio.wait([second_task])


async def _true(value: bool) -> bool:
    return value
