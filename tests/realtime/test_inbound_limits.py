"""A client cannot flood a node: per-socket inbound limits on the direct websocket path and
on polling, a per-user cap on open sockets, and a clean 400 for a poll of a closed session."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
import time
from collections.abc import AsyncIterator

import httpx
import psutil
import pytest
import socketio

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.config import Settings
from tests.realtime.node_process import NodeProcess
from tests.realtime.socket_client import connect_client
from tests.realtime.test_wire import StalledClient
from tests.support.server import serve_node
from tests.support.waiting import eventually

FLOOD_BYTES = 20 * 1024 * 1024
PING = b'421["ping"]'  # Engine.IO message, Socket.IO event "ping" with ack id 1


def masked_frames(payload: bytes, count: int) -> bytes:
    """`count` masked client text frames carrying `payload` (< 126 bytes)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return (b"\x81" + bytes((0x80 | len(payload),)) + mask + body) * count


@pytest.fixture
async def node_process(settings: Settings) -> AsyncIterator[NodeProcess]:
    """A node of its own process (`azora serve`), so its memory is its own."""
    node = await NodeProcess.start(settings, "limits")
    try:
        yield node
    finally:
        await node.stop()


def rss_mb(node: NodeProcess) -> float:
    return float(psutil.Process(node.process.pid).memory_info().rss) / 2**20


async def close_code(client: StalledClient) -> tuple[int, str]:
    """Read what the server sent until its close frame: (code, reason)."""
    while True:
        head = await client.reader.readexactly(2)
        size = head[1] & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await client.reader.readexactly(2))
        payload = await client.reader.readexactly(size)
        if head[0] & 0x0F == 0x8:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


async def test_a_websocket_flooding_tiny_packets_is_closed_with_1008_and_costs_no_memory(
    settings: Settings, node_process: NodeProcess
) -> None:
    """20 MB of `421["ping"]` on one socket (was: 208 MB -> 1.4 GB held by the worker)."""
    secret = settings.jwt_secret or ""
    bystander = await connect_client(
        node_process.url, issue_token(secret, sub="bystander", role=Role.USER)
    )
    flooder = await StalledClient.connect(
        node_process.url, issue_token(secret, sub="flooder", role=Role.USER)
    )
    before = rss_mb(node_process)
    closing = asyncio.create_task(close_code(flooder))  # read as a client does, meanwhile
    chunk = masked_frames(PING, 4096)
    sent = 0
    started = time.monotonic()
    try:
        while sent < FLOOD_BYTES and not closing.done() and time.monotonic() - started < 10:
            flooder.writer.write(chunk)
            await flooder.writer.drain()
            sent += len(chunk)
    except ConnectionError:
        pass  # the server cut the connection under our feet: what we want
    code, reason = await asyncio.wait_for(closing, 5)
    flooder.writer.close()
    after = rss_mb(node_process)
    assert code == 1008
    assert reason == "inbound limit exceeded: more than 100 packets per second"
    assert after - before < 30, f"the worker grew from {before:.0f} to {after:.0f} MB"
    # The other user's socket is untouched and still served.
    assert bystander.sio.connected
    ack = await bystander.sio.call("ping", timeout=5)
    assert "pong" in ack
    await bystander.sio.disconnect()


async def test_a_polling_session_flooding_packets_is_closed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 16 packets per POST at most (Engine.IO's payload limit): 20 a second is 2 POSTs.
    monkeypatch.setenv("AZORA_SOCKET_MAX_PACKETS_PER_S", "20")
    node_process = await NodeProcess.start(settings, "polling-limits")
    try:
        await flood_by_polling(settings, node_process)
    finally:
        await node_process.stop()


async def flood_by_polling(settings: Settings, node_process: NodeProcess) -> None:
    secret = settings.jwt_secret or ""
    base = f"{node_process.url}/socket.io/"
    token = issue_token(secret, sub="flooder", role=Role.USER)
    async with httpx.AsyncClient(timeout=10) as http:
        opened = await http.get(base, params={"EIO": "4", "transport": "polling"})
        sid = json.loads(opened.text[1:])["sid"]
        query = {"EIO": "4", "transport": "polling", "sid": sid}
        connect = await http.post(base, params=query, content="40" + json.dumps({"token": token}))
        assert connect.status_code == 200
        assert (await http.get(base, params=query)).text.startswith("40")
        before = rss_mb(node_process)
        # Engine.IO's polling payload: packets separated by \x1e, 64 KiB per POST at most.
        body = "\x1e".join(['42["ping"]'] * 16)
        answers = [
            (await http.post(base, params=query, content=body)).status_code for _ in range(200)
        ]
        after = rss_mb(node_process)
    assert answers[0] == 200
    # The second (packets 17-32) passes the limit: the session is closed, every later POST
    # answers 400 (Engine.IO's "Invalid session").
    assert answers[1] == 200
    assert set(answers[2:]) == {400}
    assert after - before < 30, f"the worker grew from {before:.0f} to {after:.0f} MB"


async def test_one_user_may_hold_only_so_many_sockets_open(settings: Settings) -> None:
    capped = settings.model_copy(update={"max_sockets_per_user": 3})
    async with serve_node(capped) as node:
        token = node.token(Role.USER, "u1")
        clients = [await connect_client(node.url, token) for _ in range(3)]
        refused = socketio.AsyncClient(reconnection=False)
        errors: list[object] = []
        refused.on("connect_error", errors.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(node.url, auth={"token": token}, transports=["websocket"])
        assert errors == [{"message": "too_many_sockets: at most 3 open at once per user"}]
        other = await connect_client(node.url, node.token(Role.USER, "u2"))
        await clients[0].sio.disconnect()

        async def freed() -> bool:
            return node.realtime.registry.per_user["u1"] == 2

        await eventually(freed)
        clients[0] = await connect_client(node.url, token)
        for client in [*clients, other]:
            await client.sio.disconnect()
        assert node.realtime.registry.per_user == {}


async def test_a_post_to_a_session_closed_by_the_connect_deadline_is_a_clean_400(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    quick = settings.model_copy(update={"socket_connect_timeout_s": 0.2})
    async with serve_node(quick) as node, httpx.AsyncClient(timeout=10) as http:
        base = f"{node.url}/socket.io/"
        opened = await http.get(base, params={"EIO": "4", "transport": "polling"})
        sid = json.loads(opened.text[1:])["sid"]

        async def closed() -> bool:
            return sid not in node.sio.environ

        await eventually(closed)
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            query = {"EIO": "4", "transport": "polling", "sid": sid}
            response = await http.post(base, params=query, content="40")
    assert response.status_code == 400
    assert "Invalid session" in response.json()
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []  # no traceback


async def test_an_upgraded_websocket_flooding_events_is_closed(settings: Settings) -> None:
    """Polling upgraded to websocket (Engine.IO serves it): its messages are metered too."""
    async with serve_node(settings) as node:
        flooder = await connect_client(
            node.url, node.token(Role.USER, "flooder"), transport="upgrade"
        )
        bystander = await connect_client(node.url, node.token(Role.USER, "bystander"))

        async def upgraded() -> bool:
            return bool(flooder.sio.transport() == "websocket")

        await eventually(upgraded)
        gone = asyncio.Event()
        flooder.sio.on("disconnect", lambda *_: gone.set())
        sockets = len(node.realtime.registry.sockets)
        for _ in range(300):
            await flooder.sio.emit("ping")
        await asyncio.wait_for(gone.wait(), 10)

        async def forgotten() -> bool:
            return len(node.realtime.registry.sockets) == sockets - 1

        await eventually(forgotten)
        assert bystander.sio.connected
        assert "pong" in await bystander.sio.call("ping", timeout=5)
        await bystander.sio.disconnect()
