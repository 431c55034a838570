"""The fan-out's direct path: frames built once and written to each websocket's transport."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
from urllib.parse import urlparse

import httpx

from azora_nexus.auth.tokens import Role
from azora_nexus.events.envelope import Event
from azora_nexus.realtime.fanout import Outcome
from azora_nexus.realtime.wire import text_frame
from tests.realtime.socket_client import Connect
from tests.support.server import Node
from tests.support.waiting import eventually


async def alert(node: Node, message: str) -> Event:
    return await node.nexus.events.publish("system.alert", {"message": message}, source="tests")


def slow_consumers_dropped(node: Node) -> float:
    labels = {"type": "system.alert", "reason": "slow_consumer"}
    registry = node.nexus.metrics.registry
    return registry.get_sample_value("azora_events_dropped_total", labels) or 0.0


def test_text_frames_carry_the_payload_length_in_the_right_form() -> None:
    assert text_frame(b"") == b"\x81\x00"
    assert text_frame(b"x" * 125)[:2] == b"\x81\x7d"
    assert text_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert text_frame(b"x" * 65535)[:4] == b"\x81\x7e\xff\xff"
    big = text_frame(b"x" * 65536)
    assert big[:2] == b"\x81\x7f"
    assert struct.unpack("!Q", big[2:10]) == (65536,)
    assert len(big) == 10 + 65536


async def test_live_events_are_written_straight_to_a_websocket(
    node: Node, connect: Connect
) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"))
    await client.subscribe(["system.alert"])
    outcomes = node.realtime.fanout.outcomes
    written, queued = outcomes[Outcome.WRITTEN], outcomes[Outcome.QUEUED]
    events = [await alert(node, str(n)) for n in range(5)]
    assert [e["id"] for e in await client.wait_for(5)] == [e.id for e in events]
    # Engine.IO's own ping may hold the queue for a tick; the rest skip it entirely.
    assert outcomes[Outcome.WRITTEN] - written >= 4
    assert (outcomes[Outcome.WRITTEN] - written) + (outcomes[Outcome.QUEUED] - queued) == 5


async def test_a_polling_socket_gets_events_through_engineio(node: Node, connect: Connect) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"), transport="polling")
    await client.subscribe(["system.alert"])
    queued = node.realtime.fanout.outcomes[Outcome.QUEUED]
    events = [await alert(node, str(n)) for n in range(3)]
    assert [e["id"] for e in await client.wait_for(3)] == [e.id for e in events]
    assert node.realtime.fanout.outcomes[Outcome.QUEUED] - queued == 3
    # The server closes: a client-side close leaves the long-poll open until the next ping.
    closed = asyncio.Event()
    client.sio.on("disconnect", lambda *_: closed.set())
    await node.sio.disconnect(client.sio.get_sid())
    await asyncio.wait_for(closed.wait(), 5)


class StalledClient:
    """A raw websocket Socket.IO client that subscribes and then never reads again."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, url: str, token: str) -> StalledClient:
        address = urlparse(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A tiny receive window, so the server's buffer fills after a few events.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (address.hostname, address.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: nexus\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
        client = cls(reader, writer)
        assert (await client.read()).startswith("0")  # Engine.IO open
        client.send("40" + json.dumps({"token": token}))
        assert (await client.read()).startswith("40")  # Socket.IO connect
        client.send('420["subscribe",{"types":["system.alert"]}]')
        assert (await client.read()).startswith("430")  # the subscribe ack
        return client

    def send(self, text: str) -> None:
        payload = text.encode()
        assert len(payload) < 1 << 16
        size = (
            bytes((0x80 | len(payload),))
            if len(payload) < 126
            else b"\xfe" + struct.pack("!H", len(payload))
        )
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(b"\x81" + size + mask + masked)

    async def read(self) -> str:
        head = await self.reader.readexactly(2)
        size = head[1] & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return (await self.reader.readexactly(size)).decode()

    async def closed_by_server(self) -> bool:
        """Drain what the server sent; True once it closed or reset the connection."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        return True


async def test_a_socket_that_stops_reading_is_dropped_not_buffered(
    node: Node, connect: Connect
) -> None:
    fanout = node.realtime.fanout
    fanout.max_buffered_bytes = 32 * 1024
    reader = await connect(node.url, node.token(Role.USER, "u1"))
    await reader.subscribe(["system.alert"])
    stalled = await StalledClient.connect(node.url, node.token(Role.USER, "u2"))
    sockets = len(node.realtime.registry.sockets)
    dropped = slow_consumers_dropped(node)
    events: list[Event] = []
    filler = "x" * 4000
    while len(node.realtime.registry.sockets) == sockets:
        assert len(events) < 2000, "the stalled socket was never dropped"
        events.append(await alert(node, f"{len(events)} {filler}"))
    assert slow_consumers_dropped(node) == dropped + 1
    assert await asyncio.wait_for(stalled.closed_by_server(), 10)
    stalled.writer.close()
    # The socket that reads misses nothing.
    received = await reader.wait_for(len(events), timeout_s=30)
    assert [e["id"] for e in received] == [e.id for e in events]


async def test_an_event_dispatched_again_does_not_reach_a_socket_twice(
    node: Node, connect: Connect
) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"))
    await client.subscribe(["system.alert"])
    first = await alert(node, "first")
    await client.wait_for(1)
    await node.realtime.fanout.dispatch([first])
    second = await alert(node, "second")  # the sentinel: a second copy of `first` comes before
    await client.wait_for_id(second.id)
    assert client.ids == [first.id, second.id]


async def test_a_polling_socket_that_stops_polling_is_dropped_and_forgotten(node: Node) -> None:
    """Engine.IO's queue past its bound: the session is closed and leaves the table at once
    (Engine.IO's `disconnect` would wait, forever, for a poll to take its CLOSE packet)."""
    fanout = node.realtime.fanout
    fanout.max_queued_packets = 3
    base = f"{node.url}/socket.io/"
    async with httpx.AsyncClient(timeout=10) as http:
        opened = await http.get(base, params={"EIO": "4", "transport": "polling"})
        sid = json.loads(opened.text[1:])["sid"]
        query = {"EIO": "4", "transport": "polling", "sid": sid}
        token = node.token(Role.USER, "u1")
        await http.post(base, params=query, content="40" + json.dumps({"token": token}))
        assert (await http.get(base, params=query)).text.startswith("40")
        subscribe = '420["subscribe",{"types":["system.alert"]}]'
        await http.post(base, params=query, content=subscribe)
        assert (await http.get(base, params=query)).text.startswith("430")
        sockets = len(node.realtime.registry.sockets)
        for n in range(6):  # and no poll any more
            await alert(node, str(n))

        async def forgotten() -> bool:
            return node.sio.eio.session(sid) is None and not fanout._closing

        await eventually(forgotten, timeout_s=10)
        assert len(node.realtime.registry.sockets) == sockets - 1
        assert sid not in node.sio.environ
        assert (await http.get(base, params=query)).status_code == 400
