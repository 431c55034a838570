"""The contract of every hook in `realtime/engine.py` with the installed libraries.

Each test names the private piece of python-socketio, python-engineio, uvicorn, asyncio or
websockets that Nexus relies on and checks it does what `engine.py` assumes. A release that
renames or changes one fails here, by name, before anything deeper breaks.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import engineio
import httpx
import pytest
import socketio
import uvicorn
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from azora_nexus.realtime import engine
from azora_nexus.realtime.engine import (
    REASON,
    EngineSession,
    EngineWire,
    RecordingWebSocket,
    Server,
    Sessions,
    SocketServer,
    apply_mask,
    other_websocket,
    record_websockets,
    track_connection,
    untrack_connection,
)
from azora_nexus.realtime.limits import InboundLimits

SIO_PATH = "/socket.io/"


def socket_server(connect_timeout_s: float = 10.0, sid_prefix: str = "") -> SocketServer:
    sio = SocketServer(
        connect_timeout_s=connect_timeout_s, sid_prefix=sid_prefix, async_mode="asgi"
    )
    sio.on("connect", lambda *_: None)
    return sio


@asynccontextmanager
async def polling(sio: SocketServer) -> AsyncIterator[httpx.AsyncClient]:
    app = socketio.ASGIApp(sio, socketio_path="socket.io")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://nexus") as client:
        yield client


async def open_session(client: httpx.AsyncClient) -> str:
    """An Engine.IO session opened by polling: its sid."""
    response = await client.get(SIO_PATH, params={"EIO": "4", "transport": "polling"})
    assert response.status_code == 200, response.text
    opened = eio_packet.Packet(encoded_packet=response.text)
    assert opened.packet_type == eio_packet.OPEN
    sid: str = opened.data["sid"]
    return sid


class FakeSession(EngineSession):
    """A session served outside Engine.IO, as `direct.py`'s, that records what it is sent."""

    __slots__ = ("closed", "closes", "closing", "sent", "session", "sid")

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.closing = self.closed = False
        self.session: dict[str, Any] = {}
        self.sent: list[eio_packet.Packet] = []
        self.closes: list[dict[str, Any]] = []

    def write_packet(self, pkt: eio_packet.Packet) -> None:
        self.sent.append(pkt)

    async def close(
        self, wait: bool = True, abort: bool = False, reason: str | None = None
    ) -> None:
        self.closes.append({"wait": wait, "abort": abort, "reason": reason})
        self.closing = self.closed = True


# -- python-socketio ---------------------------------------------------------------------------


def test_socketio_builds_its_engineio_server_from_engineio_server_class() -> None:
    """socketio.AsyncServer._engineio_server_class: Engine.IO is `Sessions`."""
    assert isinstance(socket_server().eio, Sessions)


async def test_socketio_hands_every_new_engineio_session_to_handle_eio_connect() -> None:
    """socketio.AsyncServer._handle_eio_connect and `environ`: the CONNECT deadline."""
    sio = socket_server(connect_timeout_s=0.1)
    async with polling(sio) as client:
        sid = await open_session(client)
        assert sid in sio.environ
        socket = sio.eio.session(sid)
        for _ in range(100):
            if sid not in sio.environ:
                break
            await asyncio.sleep(0.02)
        assert sid not in sio.environ, "a session without CONNECT outlived its deadline"
        assert Sessions.is_gone(socket)


async def test_socketio_maps_socketio_and_engineio_sids_both_ways() -> None:
    """socketio's manager.sid_from_eio_sid / eio_sid_from_sid."""
    sio = socket_server()
    async with polling(sio) as client:
        eio_sid = await open_session(client)
        assert sio.sid_of(eio_sid) is None  # no CONNECT yet
        query = {"EIO": "4", "transport": "polling", "sid": eio_sid}
        assert (await client.post(SIO_PATH, params=query, content="40")).status_code == 200
        sid = sio.sid_of(eio_sid)
        assert sid is not None
        assert sid != eio_sid
        assert sio.eio_sid_of(sid) == eio_sid


def test_socketio_packet_class_encodes_an_event_as_socket_on_expects() -> None:
    """socketio.AsyncServer.packet_class: an EVENT on "/" inside an Engine.IO MESSAGE."""
    packet = socket_server().event_message("system.alert", {"id": "1-0"})
    assert packet.packet_type == eio_packet.MESSAGE
    assert packet.encode() == '42["system.alert",{"id":"1-0"}]'


def test_an_event_message_carries_its_offset_last() -> None:
    """What socket.io-client keeps as its recovery offset: a string last argument."""
    packet = socket_server().event_message("system.alert", {"id": "1-0"}, "1-0")
    assert packet.encode() == '42["system.alert",{"id":"1-0"},"1-0"]'


async def test_socketio_answers_connect_through_send_packet_then_returns_from_handle_connect() -> (
    None
):
    """socketio.AsyncServer._send_packet and _handle_connect: the CONNECT answer takes the
    fields the handler left (`pid`), and `on_connected` runs once it went out; a refused
    CONNECT runs nothing."""
    sio = socket_server()
    pid = "p" * 24
    connected: list[tuple[str, int]] = []

    def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if auth and auth.get("refuse"):
            raise socketio.exceptions.ConnectionRefusedError("no")
        sio.connect_answers[sid] = {"pid": pid}

    async def on_connected(sid: str) -> None:
        connected.append((sid, len(session.sent)))

    sio.on("connect", on_connect)
    sio.on_connected = on_connected
    session = FakeSession(sio.eio.generate_id())
    sio.eio.adopt(session.sid, session)
    await sio.eio.deliver("connect", session.sid, {"REQUEST_METHOD": "GET"})
    await sio.eio.deliver("message", session.sid, '0{"refuse":true}')
    assert session.sent[0].data.startswith("4")  # CONNECT_ERROR
    assert connected == []
    await sio.eio.deliver("message", session.sid, "0{}")
    sid = sio.sid_of(session.sid)
    assert session.sent[1].data == f'0{{"sid":"{sid}","pid":"{pid}"}}'
    assert connected == [(sid, 2)]
    assert sio.connect_answers == {}


# -- python-engineio ---------------------------------------------------------------------------


async def test_engineio_takes_its_session_ids_from_generate_id() -> None:
    """engineio.AsyncServer.generate_id: a worker's sids start with its prefix."""
    sio = socket_server(sid_prefix="7.")
    async with polling(sio) as client:
        assert (await open_session(client)).startswith("7.")
    assert sio.eio.generate_id().startswith("7.")


async def test_a_session_in_the_sockets_table_is_what_engineio_and_socketio_use() -> None:
    """engineio's `sockets` table and `_trigger_event`, and what they call on a session:
    a session served outside Engine.IO connects, is sent packets, and is disconnected."""
    sio = socket_server()
    connected: list[str] = []
    messages: list[Any] = []
    gone: list[tuple[str, str]] = []
    sio.on("connect", lambda sid, environ, auth=None: connected.append(sid))

    def hello(sid: str, data: Any) -> str:
        messages.append(data)
        return "ack"

    sio.on("hello", hello)
    sio.on("disconnect", lambda sid, reason: gone.append((sid, reason)))
    eio = sio.eio
    session = FakeSession(eio.generate_id())
    eio.adopt(session.sid, session)
    assert eio.session(session.sid) is session

    assert await eio.deliver("connect", session.sid, {"REQUEST_METHOD": "GET"}) is None
    await eio.deliver("message", session.sid, "0{}")  # Socket.IO CONNECT
    [sid] = connected
    assert sio.eio_sid_of(sid) == session.sid
    # The CONNECT's answer went through the session's `send`.
    assert session.sent[0].packet_type == eio_packet.MESSAGE
    assert session.sent[0].data.startswith('0{"sid":')

    await eio.deliver("message", session.sid, '21["hello",{"n":1}]')  # EVENT with ack id 1
    for _ in range(50):  # python-socketio runs event handlers as tasks
        if len(session.sent) > 1:
            break
        await asyncio.sleep(0.01)
    assert messages == [{"n": 1}]
    assert session.sent[1].data == '31["ack"]'

    await sio.emit("news", {"n": 2}, to=sid)
    assert session.sent[2].data == '2["news",{"n":2}]'
    assert sio.transport(sid) == "websocket"  # Engine.IO reads `upgraded`

    await eio.disconnect(session.sid)  # closes the session
    assert session.closes == [{"wait": True, "abort": False, "reason": REASON.SERVER_DISCONNECT}]
    assert eio.session(session.sid) is None
    await eio.deliver("disconnect", session.sid, REASON.SERVER_DISCONNECT)
    assert gone == [(sid, REASON.SERVER_DISCONNECT)]
    eio.release(session.sid, session)  # gone already: nothing to do


async def test_engineio_refuses_polls_naming_an_upgraded_session() -> None:
    """engineio's `upgraded`: a poll naming a direct session answers 400."""
    sio = socket_server()
    session = FakeSession(sio.eio.generate_id())
    sio.eio.adopt(session.sid, session)
    async with polling(sio) as client:
        query = {"EIO": "4", "transport": "polling", "sid": session.sid}
        for response in (
            await client.get(SIO_PATH, params=query),
            await client.post(SIO_PATH, params=query, content="1"),
        ):
            assert response.status_code == 400
            assert response.json() == "Unexpected HTTP request"
    assert session.sent == []


async def test_engineio_hands_every_message_of_a_polled_session_to_trigger_event() -> None:
    """engineio.AsyncServer._trigger_event("message", sid, data) for each packet a POST
    carries: the inbound meter sees them, and closes the session past its limits."""
    sio = socket_server()
    sio.eio.limits = InboundLimits(packets_per_s=3, bytes_per_s=1 << 16)
    async with polling(sio) as client:
        sid = await open_session(client)
        query = {"EIO": "4", "transport": "polling", "sid": sid}
        assert (await client.post(SIO_PATH, params=query, content="40")).status_code == 200
        assert sio.eio.meters[sid].packets == 1
        socket = sio.eio.session(sid)
        body = "\x1e".join(['42["x"]'] * 3)
        assert (await client.post(SIO_PATH, params=query, content=body)).status_code == 200
        assert Sessions.is_gone(socket)  # AsyncSocket.close(wait=False) closed it at once
        assert sio.eio.session(sid) is None
        assert sid not in sio.environ  # python-socketio was told
        assert (await client.post(SIO_PATH, params=query, content="40")).status_code == 400


async def test_a_post_naming_a_closed_session_is_a_400_not_a_keyerror() -> None:
    """engineio's POST path raises KeyError for a session closed but still in `sockets`
    (`_get_socket`); `Sessions.handle_request` forgets such a session first."""
    sio = socket_server()
    async with polling(sio) as client:
        sid = await open_session(client)
        socket = sio.eio.session(sid)
        socket.closed = True  # as Engine.IO leaves it while its close waits for a poll
        with pytest.raises(KeyError):
            sio.eio._get_socket(sid)
        sio.eio.sockets[sid] = socket
        query = {"EIO": "4", "transport": "polling", "sid": sid}
        response = await client.post(SIO_PATH, params=query, content="40")
        assert response.status_code == 400
        assert response.json() == f"Invalid session {sid}"


async def test_engineio_sockets_have_the_state_the_fanout_reads() -> None:
    """engineio.AsyncSocket's `closing`, `closed`, `upgraded` and `queue` (an asyncio.Queue
    whose `_queue` holds the packets and `_getters` the waiting writer)."""
    eio = socket_server().eio
    socket = AsyncSocket(eio, "s1")
    wire = EngineWire(socket, protocol=None, transport=Transport())  # type: ignore[arg-type]
    assert not Sessions.is_gone(socket)
    assert wire.open()
    assert not wire.in_turn()  # not upgraded yet
    socket.upgraded = True
    assert not wire.in_turn()  # no writer waiting
    writer = asyncio.ensure_future(socket.queue.get())
    await asyncio.sleep(0)
    assert wire.in_turn()  # the writer waits on an empty queue
    await socket.queue.put(eio_packet.Packet(eio_packet.NOOP))
    assert not wire.in_turn()  # handed to the writer, not written yet
    await writer
    await socket.queue.put(eio_packet.Packet(eio_packet.NOOP))
    assert Sessions.backlog(socket) == 1
    assert not wire.in_turn()
    socket.closing = True
    assert Sessions.is_gone(socket)
    assert not wire.open()


def test_engineio_names_its_disconnect_reasons() -> None:
    """engineio.AsyncServer.reason."""
    for name in (
        "SERVER_DISCONNECT",
        "CLIENT_DISCONNECT",
        "PING_TIMEOUT",
        "TRANSPORT_CLOSE",
        "TRANSPORT_ERROR",
    ):
        assert isinstance(getattr(REASON, name), str)


def test_engineio_service_task_asks_sessions_check_ping_timeout() -> None:
    """engineio.AsyncServer._service_task: a session in `sockets` must answer it."""
    import inspect

    source = inspect.getsource(engineio.AsyncServer._service_task)
    assert "check_ping_timeout()" in source
    assert ".closed" in source
    assert ".closing" in source


class Transport:
    """Enough of an asyncio transport for a wire."""

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


async def test_engineio_makes_its_websocket_from_the_async_driver_table() -> None:
    """engineio's `_async["websocket"]`: made with (handler, server), called with the ASGI
    environ; the handler is the session's bound `_websocket_handler`."""
    sio = socket_server()
    table: dict[str, Any] = {}
    record_websockets(sio.eio, table)
    factory = sio.eio._async["websocket"]
    assert isinstance(factory, partial)
    assert factory.func is RecordingWebSocket
    assert engineio.async_drivers.asgi._async["websocket"] is not factory  # ours only

    socket = AsyncSocket(sio.eio, "s1")
    seen: list[Any] = []

    class Protocol:
        transport = Transport()
        writable = asyncio.Event()

        async def send(self, message: dict[str, Any]) -> None:
            seen.append(message["type"])

    async def handler(_socket: Any, ws: Any) -> None:
        seen.append(table.get("s1"))

    socket._websocket_handler = handler.__get__(socket)  # bound to the session, as Engine.IO's
    ws = factory(socket._websocket_handler, sio.eio)
    await ws({"asgi.send": Protocol().send, "asgi.receive": None})
    assert seen[0] == "websocket.accept"
    assert isinstance(seen[1], EngineWire)
    assert seen[1].socket is socket
    assert table == {}
    # And Engine.IO's own upgrade path makes it so.
    import inspect

    upgrade = inspect.getsource(AsyncSocket._upgrade_websocket)
    assert "self.server._async['websocket'](" in upgrade
    assert "self._websocket_handler, self.server)" in upgrade


# -- asyncio -----------------------------------------------------------------------------------


async def test_asyncio_queue_keeps_items_in_queue_and_waiting_getters_in_getters() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    assert not queue._queue  # type: ignore[attr-defined]
    assert not queue._getters  # type: ignore[attr-defined]
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert queue._getters  # type: ignore[attr-defined]
    queue.put_nowait(1)
    assert await getter == 1
    queue.put_nowait(2)
    assert list(queue._queue) == [2]  # type: ignore[attr-defined]


# -- uvicorn -----------------------------------------------------------------------------------


class Recorder:
    """A websocket protocol that records how uvicorn makes and feeds it."""

    made: list[dict[str, Any]] = []  # noqa: RUF012 (one test's record)

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.data = b""
        Recorder.made.append({"kwargs": kwargs, "protocol": self})

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        if self.data.endswith(b"\r\n\r\n"):
            assert isinstance(self.transport, asyncio.Transport)
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        pass


async def empty_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


@asynccontextmanager
async def serving(server: Server, sock: socket.socket | None) -> AsyncIterator[None]:
    task = asyncio.create_task(server.serve(sockets=None if sock is None else [sock]))
    while not server.started:
        assert not task.done(), task
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.create_server(("127.0.0.1", 0))
    with sock:
        yield sock


async def test_uvicorn_makes_its_ws_protocol_with_config_server_state_and_app_state(
    listener: socket.socket,
) -> None:
    """uvicorn's `ws` protocol: made with (config, server_state, app_state) by keyword, then
    handed the transport and the upgrade request rebuilt (what `DirectWebSocket` expects)."""
    Recorder.made.clear()
    config = uvicorn.Config(empty_app, ws=Recorder, log_config=None, lifespan="on")  # type: ignore[arg-type]
    server = Server(config)
    port = listener.getsockname()[1]
    async with serving(server, listener):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: nexus\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        writer.close()
    [made] = Recorder.made
    assert set(made["kwargs"]) == {"config", "server_state", "app_state"}
    assert made["kwargs"]["config"] is config
    assert made["kwargs"]["server_state"] is server.server_state
    assert isinstance(made["kwargs"]["app_state"], dict)
    request = made["protocol"].data
    assert request.startswith(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n")
    assert b"dGhlIHNhbXBsZSBub25jZQ==\r\n" in request


async def test_uvicorn_shuts_down_the_connections_it_tracks_and_waits_for_them(
    listener: socket.socket,
) -> None:
    """uvicorn's `server_state.connections`: `shutdown()` is called on each when it stops."""
    server = Server(uvicorn.Config(empty_app, log_config=None, lifespan="on"))
    shut: list[object] = []

    class Connection(asyncio.Protocol):
        def shutdown(self) -> None:
            shut.append(self)
            untrack_connection(server.server_state, self)

    connection = Connection()
    async with serving(server, listener):
        track_connection(server.server_state, connection)
    assert shut == [connection]
    assert not server.server_state.connections


async def test_uvicorn_server_hooks_signals_start_and_stop_and_hands_over_connections() -> None:
    """uvicorn.Server's `capture_signals`, `startup(sockets)`, `shutdown`, `lifespan.state`
    and `config.http_protocol_class`: a worker's server, listening nowhere."""
    events: list[str] = []

    class Worker(Server):
        listen = False

        def on_started(self) -> None:
            events.append("started")

        def on_stopping(self) -> None:
            events.append("stopping")

    before = signal.getsignal(signal.SIGINT)
    server = Worker(uvicorn.Config(empty_app, port=1, log_config=None, lifespan="on"))
    async with serving(server, None):
        assert signal.getsignal(signal.SIGINT) is before  # uvicorn's handlers not installed
        assert server.servers == [] or all(not s.sockets for s in server.servers)
        protocol = server.new_connection()
        assert isinstance(protocol, asyncio.Protocol)
        assert protocol.app_state is server.lifespan.state  # type: ignore[attr-defined]
    assert events == ["started", "stopping"]


def test_uvicorn_has_its_sansio_websocket_protocol_with_a_writable_event() -> None:
    """uvicorn's websockets_sansio_impl: every other websocket, and its `writable` flag."""
    config = uvicorn.Config(empty_app, log_config=None)
    config.load()
    state = uvicorn.server.ServerState()
    protocol = other_websocket(config, state, {})
    assert isinstance(protocol, asyncio.Protocol)
    assert isinstance(protocol.writable, asyncio.Event)  # type: ignore[attr-defined]
    assert isinstance(state.connections, set)


# -- websockets --------------------------------------------------------------------------------


def test_websockets_speedups_unmask_a_client_frame() -> None:
    """websockets.speedups.apply_mask (RFC 6455 5.3), the C one."""
    mask = b"\x37\xfa\x21\x3d"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(b"Hello"))
    assert masked == b"\x7f\x9f\x4d\x51\x58"  # RFC 6455, 5.7
    assert apply_mask(masked, mask) == b"Hello"
    assert type(engine.apply_mask).__name__ == "builtin_function_or_method"


# -- the version check ---------------------------------------------------------------------------


def test_importing_the_seam_refuses_a_library_outside_its_tested_range(tmp_path: Path) -> None:
    info = tmp_path / "python_engineio-99.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: python-engineio\nVersion: 99.0\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
            "import azora_nexus.realtime.engine",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "UntestedDependency: python-engineio 99.0 is outside the range" in result.stderr
