"""The bench's cheap Socket.IO client speaks the protocol the way real clients do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from bench.fanout.server import NexusUnderTest
from bench.sio_client import SioClient, SocketIOError
from bench.validate_client import TYPES, USER, compare, publish_all, validate

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.config import Settings
from tests.bench_harness.served_node import serve_nexus
from tests.support.server import serve_app


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[NexusUnderTest]:
    """This test's Nexus on a free port of 127.0.0.1."""
    async with serve_nexus(settings) as server:
        yield server


def ignore(name: str, data: Any, received_ns: int) -> None:
    pass


class Received:
    """Events a client got, as (name, data), and a way to wait for a number of them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()

    def add(self, name: str, data: Any, *_: object) -> None:
        self.events.append((name, data))
        self.changed.set()

    async def wait_for(self, count: int, timeout_s: float = 10) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_cheap_client_receives_what_python_socketio_receives(
    served: NexusUnderTest,
) -> None:
    token = issue_token(served.secret, sub=USER, role=Role.USER)
    reference = socketio.AsyncClient(reconnection=False)
    seen, cheap_seen = Received(), Received()

    async def on_any(name: str, data: Any, *_offset: Any) -> None:
        seen.add(name, data)

    reference.on("*", on_any)
    await reference.connect(served.url, auth={"token": token}, transports=["websocket"])
    cheap = await SioClient.connect(served.url, {"token": token}, cheap_seen.add)
    try:
        reference_ack = await reference.call("subscribe", {"types": TYPES}, timeout=10)
        cheap_ack = await cheap.call("subscribe", {"types": TYPES})
        published = await publish_all(served)
        # The last event published is delivered and events come in order: it is the sentinel
        # for those that must not come (published first, they would be among these).
        await seen.wait_for(len(published))
        await cheap_seen.wait_for(len(published))
    finally:
        await cheap.close()
        await reference.disconnect()
    reference_lines = [{"event": name, "data": data} for name, data in seen.events]
    assert compare(cheap_ack, reference_ack, cheap_seen.events, reference_lines, published) == []
    assert [name for name, _ in cheap_seen.events] == [event["type"] for event in published]


async def test_cheap_client_is_refused_with_a_bad_token(served: NexusUnderTest) -> None:
    with pytest.raises(SocketIOError, match="connect_error: unauthorized"):
        await SioClient.connect(served.url, {"token": "not-a-jwt"}, ignore)


async def test_cheap_client_gets_the_error_ack_of_a_bad_subscribe(
    served: NexusUnderTest,
) -> None:
    token = issue_token(served.secret, sub="someone", role=Role.USER)
    client = await SioClient.connect(served.url, {"token": token}, ignore)
    try:
        ack = await client.call("subscribe", {"types": ["no.such.type"]})
        pong = await client.call("ping", None)
    finally:
        await client.close()
    assert ack["ok"] is False
    assert ack["error"]["code"] == "invalid"
    assert isinstance(pong["pong"], int)


@pytest.fixture
async def fast_pinging_server() -> AsyncIterator[tuple[socketio.AsyncServer, str]]:
    """A plain python-socketio server that pings every 0.2 s and drops a silent client."""
    sio = socketio.AsyncServer(async_mode="asgi", ping_interval=0.2, ping_timeout=0.3)
    async with serve_app(socketio.ASGIApp(sio)) as url:
        yield sio, url


async def test_cheap_client_answers_pings_and_stays_connected(
    fast_pinging_server: tuple[socketio.AsyncServer, str],
) -> None:
    sio, url = fast_pinging_server
    received = Received()
    client = await SioClient.connect(url, None, received.add)
    try:
        await asyncio.sleep(1.5)  # several ping intervals: a silent client is gone by now
        assert client.is_open
        await sio.emit("hello", {"n": 1})
        await received.wait_for(1)
    finally:
        await client.close()
    assert received.events == [("hello", {"n": 1})]


async def test_cheap_client_receives_what_socket_io_client_receives(
    served: NexusUnderTest,
) -> None:
    # Node.js and socket.io-client come from the repo's package.json (`npm ci`).
    assert await validate(served) == []
