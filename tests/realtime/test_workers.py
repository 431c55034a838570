"""`serve --workers 2`: one port, two worker processes, sticky routing for polling sessions."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from azora_nexus.auth.tokens import Role
from azora_nexus.config import Settings
from azora_nexus.workers.routing import session_owner
from tests.realtime.js_client import JsClient
from tests.realtime.node_process import NodeProcess
from tests.realtime.test_multinode import token
from tests.support.waiting import eventually

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture
async def two_workers(settings: Settings) -> AsyncIterator[NodeProcess]:
    node = await NodeProcess.start(settings, "workers", workers=2)
    yield node
    await node.stop()


def worker_pids(node: NodeProcess) -> dict[int, int]:
    """Worker index -> pid, from the parent's children."""
    found = {}
    for child in psutil.Process(node.process.pid).children():
        try:
            command = child.cmdline()
        except psutil.Error:  # exited (a zombie until the parent reaps it)
            continue
        if "worker" in command:
            found[int(command[command.index("--index") + 1])] = child.pid
    return found


async def post_alert(node: NodeProcess, settings: Settings, message: str) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{node.url}/events",
            json={"type": "system.alert", "payload": {"m": message}, "source": "t"},
            headers={"Authorization": f"Bearer {token(settings, Role.SERVICE, 'svc')}"},
        )
    assert response.status_code == 202, response.text
    posted: str = response.json()["id"]
    return posted


async def test_polling_and_upgrading_js_clients_are_served_by_the_worker_of_their_session(
    settings: Settings, two_workers: NodeProcess
) -> None:
    async with httpx.AsyncClient() as http:
        poll = await http.get(f"{two_workers.url}/socket.io/?EIO=4&transport=polling")
    # The next request of that session must come on a new connection, routed by its sid.
    assert poll.headers["connection"] == "close"
    user = token(settings, Role.USER, "u1")
    # The client's default (polling, then the upgrade to websocket) and polling alone: every
    # request of a session after the first must reach the worker that holds the session.
    clients = [
        await JsClient.start(two_workers.url, user, transport)
        for transport in ["upgrade"] * 6 + ["polling"] * 4
    ]
    try:
        sessions = [(await c.wait_for("connected"))[0]["engine"] for c in clients]
        assert {session_owner(f"GET /socket.io/?sid={s} HTTP/1.1".encode()) for s in sessions} == {
            0,
            1,
        }
        for client in clients[:6]:
            [upgraded] = await client.wait_for("upgraded")
            assert upgraded["transport"] == "websocket"
        for client in clients:
            assert await client.send("subscribe", {"types": ["system.alert"]}) == {
                "ok": True,
                "subscribed": ["system.alert"],
            }
        posted = await post_alert(two_workers, settings, "to all")
        sentinel = await post_alert(two_workers, settings, "sentinel")
        for client in clients:
            received = await client.wait_for("event", 2)
            assert [e["data"]["id"] for e in received] == [posted, sentinel]
        assert all(not c.process.returncode for c in clients)
        assert not any(r["kind"] == "disconnected" for c in clients for r in c.records)
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_a_killed_worker_is_replaced_and_sessions_of_the_other_stay(
    settings: Settings, two_workers: NodeProcess
) -> None:
    user = token(settings, Role.USER, "u1")
    before = worker_pids(two_workers)
    assert sorted(before) == [0, 1]
    clients = [await JsClient.start(two_workers.url, user, "polling") for _ in range(4)]
    try:
        sessions = [(await c.wait_for("connected"))[0]["engine"] for c in clients]
        survivors = [c for c, s in zip(clients, sessions, strict=True) if s.startswith("1.")]
        assert survivors, sessions
        psutil.Process(before[0]).send_signal(signal.SIGKILL)

        async def replaced() -> bool:
            now = worker_pids(two_workers)
            return sorted(now) == [0, 1] and now[0] != before[0]

        await eventually(replaced)
        await two_workers.wait_ready()
        for client in survivors:
            await client.send("subscribe", {"types": ["system.alert"]})
        posted = await post_alert(two_workers, settings, "after the restart")
        for client in survivors:
            [event] = await client.wait_for("event")
            assert event["data"]["id"] == posted
        newcomer = await JsClient.start(two_workers.url, user, "polling")
        clients.append(newcomer)
        await newcomer.wait_for("connected")
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_sigterm_stops_every_worker(settings: Settings, two_workers: NodeProcess) -> None:
    workers = [psutil.Process(pid) for pid in worker_pids(two_workers).values()]
    assert len(workers) == 2
    two_workers.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(two_workers.process.wait(), 20) == 0
    assert [w.pid for w in workers if w.is_running() and w.status() != "zombie"] == []


async def scrape(node: NodeProcess) -> dict[str, float]:
    """One scrape on a new connection (so the parent hands it to the next worker)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{node.url}/metrics")).text
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_from_either_worker_count_both(
    settings: Settings, two_workers: NodeProcess
) -> None:
    user = token(settings, Role.USER, "u1")
    clients = [await JsClient.start(two_workers.url, user) for _ in range(4)]
    try:
        sessions = [(await c.wait_for("connected"))[0]["engine"] for c in clients]
        assert {s.split(".")[0] for s in sessions} == {"0", "1"}
        for client in clients:
            await client.send("subscribe", {"types": ["system.alert"]})
        await post_alert(two_workers, settings, "counted")
        for client in clients:
            await client.wait_for("event")
        async with httpx.AsyncClient() as http:  # one cache read on some worker
            me = await http.get(f"{two_workers.url}/health")
        assert me.status_code == 200
        delivered = "azora_events_delivered_total[('type', 'system.alert')]"
        for _ in range(4):  # each worker answers at least once
            values = await scrape(two_workers)
            assert values["azora_sockets_connected[]"] == 4
            assert values[delivered] == 4
            assert "azora_cache_hits_total[]" in values
            assert values["azora_backend_up[('backend', 'postgres')]"] == 1
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def cache_loads(node: NodeProcess, admin: str) -> int:
    """`/cache/stats` loads, asked on a new connection (so each worker answers in turn)."""
    async with httpx.AsyncClient() as http:
        stats = await http.get(
            f"{node.url}/cache/stats", headers={"Authorization": f"Bearer {admin}"}
        )
    assert stats.status_code == 200, stats.text
    loads: int = stats.json()["loads"]
    return loads


async def test_cache_stats_from_either_worker_count_both(
    settings: Settings, two_workers: NodeProcess
) -> None:
    admin = token(settings, Role.ADMIN, "a1")
    for _ in range(10):  # each on a new connection: the parent deals them out in turn
        async with httpx.AsyncClient() as http:
            read = await http.get(
                f"{two_workers.url}/api/users/{uuid.uuid4()}",
                headers={"Authorization": f"Bearer {admin}"},
            )
        assert read.status_code == 404, read.text  # a database load through the cache

    async def both_workers_count_all_ten() -> bool:
        return [await cache_loads(two_workers, admin) for _ in range(4)] == [10] * 4

    await eventually(both_workers_count_all_ten, timeout_s=5.0)
