"""Sessions opened on a websocket, served by realtime/direct.py: handshake, pings, framing."""

from __future__ import annotations

import asyncio
import os
import struct
import time

import httpx

from azora_nexus.auth.tokens import Role
from azora_nexus.config import Settings
from azora_nexus.realtime.direct import DirectWebSocket
from azora_nexus.realtime.engine import EngineWire
from azora_nexus.realtime.framing import accept_key
from tests.realtime.socket_client import Connect, connect_client
from tests.realtime.test_wire import StalledClient, alert
from tests.support.server import Node, serve_node
from tests.support.waiting import eventually


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
    # Polls naming the websocket session are refused (as Engine.IO refuses them for an
    # upgraded one), and the session goes on.
    polling = f"{node.url}/socket.io/?EIO=4&transport=polling&sid={direct.sio.eio.sid}"
    async with httpx.AsyncClient() as http:
        for response in (await http.get(polling), await http.post(polling, content="1")):
            assert response.status_code == 400
            assert response.text == '"Unexpected HTTP request"'

    assert direct.sio.connected
    second = await alert(node, "still there")
    assert (await direct.wait_for(2))[1]["id"] == second.id


async def test_a_silent_socket_is_closed_ping_timeout_after_the_ping_it_ignored(
    settings: Settings,
) -> None:
    """Engine.IO v4: pinged every interval, closed when a ping is not answered within the
    timeout, so at most interval + timeout after the client last spoke; one that answers
    stays."""
    interval, timeout = 1.0, 0.5
    fast = settings.model_copy(
        update={"socket_ping_interval_s": interval, "socket_ping_timeout_s": timeout}
    )
    async with serve_node(fast) as node:
        answering = await connect_client(node.url, node.token(Role.USER, "u1"))
        silent = await StalledClient.connect(node.url, node.token(Role.USER, "u2"))
        last_said = time.monotonic()
        sockets = len(node.realtime.registry.sockets)
        assert await asyncio.wait_for(silent.read(), interval + 1) == "2"
        pinged_at = time.monotonic()
        assert await asyncio.wait_for(silent.closed_by_server(), interval + timeout + 1)
        closed_at = time.monotonic()
        silent.writer.close()
        assert timeout - 0.1 <= closed_at - pinged_at <= timeout + 0.3
        assert closed_at - last_said <= interval + timeout + 0.3

        async def forgotten() -> bool:
            return len(node.realtime.registry.sockets) == sockets - 1

        await eventually(forgotten)
        assert len(node.realtime.wires.by_sid) == 1
        assert len(node.realtime.heartbeat.sessions) == 1
        # The client that answers its pings is still there after a few rounds.
        await asyncio.sleep(3 * interval)
        assert answering.sio.connected
        assert len(node.realtime.heartbeat.sessions) == 1
        await answering.subscribe(["system.alert"])
        event = await alert(node, "still here")
        assert (await answering.wait_for(1))[0]["id"] == event.id
        await answering.sio.disconnect()


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


def masked(opcode: int, payload: bytes, *, final: bool = True) -> bytes:
    """A client frame: masked, as RFC 6455 requires of clients."""
    mask = os.urandom(4)
    size = len(payload)
    head = bytes(((0x80 if final else 0) | opcode,))
    head += bytes((0x80 | size,)) if size < 126 else bytes((0x80 | 126,)) + struct.pack("!H", size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_a_client_gone_during_its_connect_leaves_nothing_behind(node: Node) -> None:
    """The disconnect waits for the CONNECT being authorised: no socket stays registered."""
    before = len(node.realtime.registry.sockets)
    address = node.url.removeprefix("http://").split(":")
    for _ in range(5):
        reader, writer = await asyncio.open_connection(address[0], int(address[1]))
        writer.write(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: nexus\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await reader.readuntil(b"\r\n\r\n")
        token = node.token(Role.USER, "gone")
        writer.write(masked(0x1, b'40{"token":"' + token.encode() + b'"}'))
        writer.close()  # at once: the server is still checking the token
        await writer.wait_closed()
    for _ in range(100):
        if not node.realtime.wires.by_sid and len(node.realtime.registry.sockets) == before:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # any connect still running would have registered by now
    assert len(node.realtime.registry.sockets) == before
    assert node.realtime.wires.by_sid == {}


async def test_protocol_violations_close_the_socket_with_their_code(node: Node) -> None:
    unmasked = b"\x81\x0242"
    assert await close_code_after(node, unmasked) == 1002
    too_big = b"\x81\xff" + struct.pack("!Q", 1 << 20) + os.urandom(4)
    assert await close_code_after(node, too_big) == 1009
    not_utf8 = b"\x81\x82" + b"\x00" * 4 + b"\xff\xfe"
    assert await close_code_after(node, not_utf8) == 1007
    # Each part under the 64 KiB cap, the message over it.
    part = b"4" + b"x" * 40_000
    in_parts = masked(0x1, part, final=False) + masked(0x0, part, final=False)
    assert await close_code_after(node, in_parts) == 1009
    stray_continuation = masked(0x0, b"42[]")
    assert await close_code_after(node, stray_continuation) == 1002
    fragmented_ping = masked(0x9, b"", final=False)
    assert await close_code_after(node, fragmented_ping) == 1002
