"""Several nodes on one PostgreSQL and Redis: cross-node delivery, relay failover, resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.config import Settings
from azora_nexus.events.outbox import add_event
from azora_nexus.nexus import Nexus, open_nexus
from tests.realtime.node_process import NodeProcess, relay_holder_pid
from tests.realtime.socket_client import Client, connect_client
from tests.support.waiting import eventually

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow

StartNode = Callable[[str], Awaitable[NodeProcess]]


@pytest.fixture
async def start_node(settings: Settings) -> AsyncIterator[StartNode]:
    """`await start_node(name)`: a node process, stopped (or already killed) after the test."""
    nodes: list[NodeProcess] = []

    async def start(name: str) -> NodeProcess:
        node = await NodeProcess.start(settings, name)
        nodes.append(node)
        return node

    yield start
    await asyncio.gather(*(node.stop() for node in nodes))


@pytest.fixture
async def publisher(settings: Settings) -> AsyncIterator[Nexus]:
    """This test process as one more writer: no relay, no tailer of its own."""
    async with open_nexus(settings, background=False) as nexus:
        yield nexus


def token(settings: Settings, role: Role, sub: str) -> str:
    return issue_token(settings.jwt_secret or "", sub=sub, role=role)


async def test_an_event_published_on_one_node_reaches_clients_on_every_node(
    settings: Settings, start_node: StartNode, publisher: Nexus
) -> None:
    node_a, node_b = await asyncio.gather(start_node("a"), start_node("b"))
    user = token(settings, Role.USER, "u1")
    on_a = await connect_client(node_a.url, user)
    on_b = await connect_client(node_b.url, user)
    for client in (on_a, on_b):
        await client.subscribe(["system.*"])
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{node_a.url}/events",
            json={"type": "system.alert", "payload": {"m": "from a"}, "source": "t"},
            headers={"Authorization": f"Bearer {token(settings, Role.SERVICE, 'svc')}"},
        )
    assert response.status_code == 202
    posted = response.json()["id"]
    async with publisher.db.transaction() as session:
        await add_event(session, "system.user.login", {"userId": "u1"}, source="t", user_id="u1")
        # The sentinel takes the same path (the outbox, then the relay): once it is in, a
        # second copy of either event would have come before it.
        await add_event(session, "system.alert", {"m": "sentinel"}, source="t")
    for client in (on_a, on_b):
        await client.wait_for(3)
    assert on_a.ids == on_b.ids
    assert on_a.ids[0] == posted
    assert [e["type"] for e in on_b.received] == [
        "system.alert",
        "system.user.login",
        "system.alert",
    ]
    assert on_b.received[-1]["payload"] == {"m": "sentinel"}
    await asyncio.gather(on_a.sio.disconnect(), on_b.sio.disconnect())


async def test_the_relay_fails_over_when_its_node_is_killed(
    settings: Settings, start_node: StartNode, publisher: Nexus
) -> None:
    url = settings.database_url or ""
    node_a = await start_node("a")
    await eventually(lambda: _is(relay_holder_pid(url), node_a.process.pid))
    node_b = await start_node("b")
    client = await connect_client(node_b.url, token(settings, Role.ADMIN, "root"))
    await client.subscribe(["system.alert"])
    node_a.kill()
    await node_a.process.wait()
    async with publisher.db.transaction() as session:
        await add_event(session, "system.alert", {"m": "after failover"}, source="t")
    await client.wait_for(1, timeout_s=15)
    assert await relay_holder_pid(url) == node_b.process.pid
    # Relayed after the first row by the same relay: a second copy of it comes before this.
    async with publisher.db.transaction() as session:
        await add_event(session, "system.alert", {"m": "sentinel"}, source="t")
    await client.wait_for(2, timeout_s=15)
    assert [e["payload"] for e in client.received] == [{"m": "after failover"}, {"m": "sentinel"}]
    await client.sio.disconnect()


async def test_a_client_resumes_on_another_node_after_kill_9_mid_burst(
    settings: Settings, start_node: StartNode, publisher: Nexus
) -> None:
    node_a, node_b = await asyncio.gather(start_node("a"), start_node("b"))
    user = token(settings, Role.USER, "u1")
    first = await connect_client(node_a.url, user)
    await first.subscribe(["finance.*"])
    lost = asyncio.Event()
    first.sio.on("disconnect", lambda *_: lost.set())
    published: list[str] = []
    stop = asyncio.Event()

    async def burst() -> None:
        while not stop.is_set() or len(published) < 600:
            event = await publisher.events.publish(
                "finance.mining.reward", {"amount": "1.00"}, source="t", user_id="u1"
            )
            published.append(event.id)
            if len(published) % 20 == 0:
                await asyncio.sleep(0.005)

    burster = asyncio.create_task(burst())
    await first.wait_for(100, timeout_s=20)
    node_a.kill()
    await asyncio.wait_for(lost.wait(), 10)
    last_seen = first.ids[-1]
    second: Client = await connect_client(node_b.url, user)
    ack = await second.subscribe(["finance.*"], after=last_seen)
    assert ack == {"ok": True, "subscribed": ["finance.*"]}
    await asyncio.sleep(0.3)
    stop.set()
    await burster
    assert first.ids == published[: len(first.ids)]
    missed = published[published.index(last_seen) + 1 :]
    sentinel = await publisher.events.publish(
        "finance.mining.reward", {"amount": "0.01"}, source="t", user_id="u1"
    )
    await second.wait_for_id(sentinel.id, timeout_s=30)
    assert second.ids == [*missed, sentinel.id]
    await second.sio.disconnect()


async def _is(value: Awaitable[int | None], expected: int) -> bool:
    return await value == expected
