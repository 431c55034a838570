"""Sessions opened on a websocket, served by realtime/direct.py: handshake, pings, framing."""

from __future__ import annotations

import asyncio
import os
import struct
import time

from socket_client import Connect, Node
from test_wire import StalledClient, alert

from azora_nexus.auth.tokens import Role
from azora_nexus.realtime.direct import DirectWebSocket, accept_key
from azora_nexus.realtime.wire import EngineWire


def test_the_handshake_answers_the_rfc_example() -> None:
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


async def test_a_websocket_session_is_served_directly_and_an_upgraded_one_by_engineio(
    node: Node, connect: Connect
) -> None:
    direct = await connect(node.url, node.token(Role.USER, "u1"))
    upgraded = await connect(node.url, node.token(Role.USER, "u2"), transport="upgrade")
    for client in (direct, upgraded):
        await client.subscribe(["system.alert"])
    wires = node.realtime.wires.by_sid
    assert isinstance(wires[direct.sio.eio.sid], DirectWebSocket)
    assert isinstance(wires[upgraded.sio.eio.sid], EngineWire)
    event = await alert(node, "both")
    for client in (direct, upgraded):
        assert (await client.wait_for(1))[0]["id"] == event.id
    assert node.sio.eio.sockets[direct.sio.eio.sid] is wires[direct.sio.eio.sid]


async def test_keep_alive_pings_and_closes_a_socket_that_stays_silent(node: Node) -> None:
    silent = await StalledClient.connect(node.url, node.token(Role.USER, "u1"))
    [wire] = [w for w in node.realtime.wires.by_sid.values() if isinstance(w, DirectWebSocket)]
    wire.keep_alive(time.monotonic() - 60)  # heard from lately: pinged
    assert await asyncio.wait_for(silent.read(), 5) == "2"
    sockets = len(node.realtime.registry.sockets)
    wire.keep_alive(time.monotonic() + 1)  # silent since: closed
    assert await asyncio.wait_for(silent.closed_by_server(), 5)
    silent.writer.close()
    for _ in range(50):
        if len(node.realtime.registry.sockets) < sockets:
            break
        await asyncio.sleep(0.05)
    assert len(node.realtime.registry.sockets) == sockets - 1
    assert wire.sid not in node.sio.eio.sockets
    assert wire.sid not in node.realtime.wires.by_sid


async def close_code_after(node: Node, raw: bytes) -> int:
    """Send `raw` bytes after a good handshake; the close code the server answers with."""
    client = await StalledClient.connect(node.url, node.token(Role.USER, "u1"))
    client.writer.write(raw)
    try:
        while True:
            head = await asyncio.wait_for(client.reader.readexactly(2), 5)
            payload = await client.reader.readexactly(head[1] & 0x7F)
            if head[0] & 0x0F == 0x8:
                code: int = struct.unpack("!H", payload[:2])[0]
                return code
    finally:
        client.writer.close()


async def test_protocol_violations_close_the_socket_with_their_code(node: Node) -> None:
    unmasked = b"\x81\x0242"
    assert await close_code_after(node, unmasked) == 1002
    too_big = b"\x81\xff" + struct.pack("!Q", 1 << 20) + os.urandom(4)
    assert await close_code_after(node, too_big) == 1009
    not_utf8 = b"\x81\x82" + b"\x00" * 4 + b"\xff\xfe"
    assert await close_code_after(node, not_utf8) == 1007
