"""The one seam between Nexus and the private internals of the libraries that serve sockets.

Nexus serves Socket.IO with python-socketio and python-engineio under uvicorn, and reaches
past their public APIs in a few places: a session opened on a websocket is served by a small
protocol object of Nexus's own (`direct.py`: 42 -> 6 KB per socket), and the fan-out writes
an event's frame straight to each websocket's transport. Every such reach is in this module,
under a name that says what it does; no other module of `src/` touches a private name of
python-socketio, python-engineio, uvicorn, asyncio or websockets.

Importing this module refuses a library outside the range Nexus was tested with (`compat.py`,
from pyproject.toml), and `tests/realtime/test_engine_contract.py` checks every hook below
against the installed libraries, so a release that moves one fails there, by name.

The hooks:
- python-socketio: `AsyncServer._engineio_server_class` (Engine.IO is `Sessions`),
  `_handle_eio_connect` and `environ` (the CONNECT deadline), `manager.sid_from_eio_sid` and
  `eio_sid_from_sid`, `packet_class`, `_send_packet` (the CONNECT answer carries the
  recovery `pid`) and `_handle_connect` (what runs once that answer is sent: a recovered
  socket's replay).
- python-engineio: `AsyncServer.generate_id` (sids that name their worker), `_trigger_event`
  (a direct session's connect, messages and disconnect; the inbound meter of the sessions
  Engine.IO serves), `handle_request` (a POST naming a closed session), the `sockets`
  table, the `_async` driver table's "websocket" entry and its `WebSocket` (the transport
  of a websocket that Engine.IO serves), `AsyncServer.reason`, an `AsyncSocket`'s
  `closing`, `closed`, `upgraded`, `queue` and `close(wait=False)`, and what Engine.IO and
  python-socketio call on a session in the `sockets` table (`EngineSession`).
- asyncio: `Queue._queue` and `Queue._getters` (Engine.IO's writer, idle on its queue).
- uvicorn: `protocols.websockets.websockets_sansio_impl.WebSocketsSansIOProtocol` (every
  websocket that is not a direct session), the websocket protocol's constructor
  `(config, server_state, app_state)` and `shutdown()`, `ServerState.connections`, a websocket
  protocol's `transport` and `writable` event, `Server.capture_signals`,
  `Server.startup(sockets)` and `shutdown`, and `Config.http_protocol_class` with
  `Server.lifespan.state` (a worker's connections).
- websockets: `speedups.apply_mask` (a client frame unmasked in C).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, ClassVar, cast
from urllib.parse import parse_qs

import engineio
import socketio
import uvicorn
from engineio import packet as eio_packet
from engineio.async_drivers.asgi import WebSocket as EngineWebSocket
from socketio import packet as sio_packet
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.speedups import apply_mask

from azora_nexus.compat import check_tested_versions
from azora_nexus.realtime.limits import InboundLimits, Meter

check_tested_versions()
logger = logging.getLogger(__name__)

__all__ = [
    "REASON",
    "EngineSession",
    "EngineWire",
    "RecordingWebSocket",
    "Server",
    "Sessions",
    "SocketServer",
    "apply_mask",
    "other_websocket",
    "record_websockets",
    "track_connection",
    "untrack_connection",
]

# Why a session ended, as Engine.IO and python-socketio name it (`.SERVER_DISCONNECT`,
# `.CLIENT_DISCONNECT`, `.PING_TIMEOUT`, `.TRANSPORT_CLOSE`, `.TRANSPORT_ERROR`).
REASON = engineio.AsyncServer.reason


# -- python-engineio -------------------------------------------------------------------------


class Sessions(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO, with session ids that name their worker and a few hooks for `direct.py`.

    A sid reads `<worker>.<random>`: the part before the dot says which worker process
    holds the session (`workers/routing.py`); the rest is Engine.IO's own id.

    With `limits`, every message of a session Engine.IO serves (polling, or polling upgraded
    to websocket) is counted, and a session past them is closed (a direct session counts
    its own frames).
    """

    sid_prefix = ""
    limits: InboundLimits | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meters: dict[str, Meter] = {}

    def generate_id(self) -> str:
        sid: str = super().generate_id()
        return self.sid_prefix + sid

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        # A POST naming a session that is closed but still in the table (closed by the
        # CONNECT deadline or a ping timeout, and not yet reaped) makes Engine.IO's POST
        # path raise KeyError: a 500 with a traceback. Forgotten first, as Engine.IO's own
        # GET path forgets it, it is a 400 "Invalid session".
        scope = args[0] if args else None
        if isinstance(scope, dict) and scope.get("method") == "POST":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            sid = query.get("sid", [""])[0]
            socket = self.sockets.get(sid)
            if socket is not None and socket.closed:
                del self.sockets[sid]
        return await super().handle_request(*args, **kwargs)

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        """Engine.IO's handler call for the sessions it serves: messages are metered."""
        if event == "message" and self.limits is not None:
            sid, data = args[0], args[1]
            meter = self.meters.get(sid)
            if meter is None:
                meter = self.meters[sid] = Meter()
            exceeded = self.limits.charge(meter, time.monotonic(), 1, len(data))
            if exceeded is not None:
                if sid in self.sockets:
                    logger.warning("Engine.IO session %s closed: %s", sid, exceeded)
                    await self.end(sid, exceeded)
                return None
        elif event == "disconnect":
            self.meters.pop(args[0], None)
        return await super()._trigger_event(event, *args, **kwargs)

    async def end(self, sid: str, reason: str) -> None:
        """Close session `sid` now and forget it; a poll or websocket of it still waiting
        gets its CLOSE packet. (Engine.IO's `disconnect` waits until a poll takes that
        packet, and forever for a client that is gone.)"""
        socket = self.sockets.get(sid)
        if socket is None:
            return
        await socket.close(wait=False, reason=reason)
        queue = getattr(socket, "queue", None)
        if queue is not None:
            queue.put_nowait(None)  # ends the websocket writer of an upgraded session
        self.release(sid, socket)

    def session(self, sid: str) -> Any:
        """The session object of `sid` in Engine.IO's table (None when gone)."""
        return self.sockets.get(sid)

    def adopt(self, sid: str, session: EngineSession) -> None:
        """Make `session` the one Engine.IO and python-socketio see as `sid`."""
        self.sockets[sid] = session

    def release(self, sid: str, session: EngineSession) -> None:
        """Forget `session` (only if `sid` is still it)."""
        if self.sockets.get(sid) is session:
            del self.sockets[sid]

    async def deliver(self, event: str, sid: str, *args: Any) -> Any:
        """Run Engine.IO's handler of `event` ("connect", "message", "disconnect") for `sid`
        now, as Engine.IO does for a session it serves itself (python-socketio's handlers).
        Not metered here: a direct session meters its own frames."""
        return await engineio.AsyncServer._trigger_event(self, event, sid, *args, run_async=False)

    @staticmethod
    def is_gone(socket: Any) -> bool:
        """Whether an Engine.IO socket is closing or closed."""
        return bool(socket.closing or socket.closed)

    @staticmethod
    def backlog(socket: Any) -> int:
        """How many packets wait in an Engine.IO socket's queue."""
        size: int = socket.queue.qsize()
        return size


class EngineSession:
    """What Engine.IO and python-socketio use of a session object in `Sessions.sockets`.

    A session served outside Engine.IO (`direct.py`) subclasses this and provides the rest:
    `sid`, `closing`, `closed`, `session` (python-socketio's per-session dict),
    `write_packet(pkt)` and `async close(wait, abort, reason)`. Engine.IO answers a poll that
    names an upgraded session with 400 "Unexpected HTTP request".
    """

    __slots__ = ()

    sid: str
    closed: bool
    upgraded: ClassVar[bool] = True
    connected: ClassVar[bool] = True

    def write_packet(self, pkt: eio_packet.Packet) -> None:
        """Write one packet to the client: the one hook a session class must give (the
        direct websocket session, direct.py); not an ABC, so its uvicorn base keeps its
        metaclass."""
        raise NotImplementedError

    async def send(self, pkt: eio_packet.Packet) -> None:
        """Engine.IO's `send_packet` (python-socketio's emits and acks) comes here."""
        self.write_packet(pkt)

    async def check_ping_timeout(self) -> bool:
        """Engine.IO's service task asks (once it runs): the session's own heartbeat closes
        a silent one, so only a closed session says no."""
        return not self.closed


class EngineWire:
    """A websocket Engine.IO serves, as the fan-out's `Wire`: its socket, uvicorn protocol
    and asyncio transport."""

    __slots__ = ("protocol", "socket", "transport")

    def __init__(self, socket: Any, protocol: Any, transport: asyncio.Transport) -> None:
        self.socket = socket  # engineio.async_socket.AsyncSocket
        self.protocol = protocol  # uvicorn's websocket protocol, which owns the transport
        self.transport = transport

    def open(self) -> bool:
        """Whether frames written now can still reach the client."""
        # Engine.IO sets `closing` first whatever closes the session; the transport knows
        # of a lost connection. (Checked per recipient per event, so nothing more.)
        return not (self.socket.closing or self.transport.is_closing())

    def in_turn(self) -> bool:
        """Whether a frame written now comes after every packet Engine.IO was given before.

        True only once upgraded and while Engine.IO's writer waits on an empty queue: a
        packet it has taken but not yet written (it takes a loop tick or two) would be
        overtaken otherwise, so then the caller queues behind it instead.
        """
        socket = self.socket
        queue: Any = socket.queue
        # asyncio.Queue's items are in `_queue` and its waiting getters in `_getters`: an
        # empty queue with a getter is the writer, idle (`empty()` costs a method call).
        return bool(socket.upgraded and not queue._queue and queue._getters)

    async def writable(self) -> None:
        """Wait until the transport is below its high-water mark (uvicorn's own flag)."""
        flag: asyncio.Event | None = getattr(self.protocol, "writable", None)
        if flag is not None:
            await flag.wait()


def record_websockets(eio: engineio.AsyncServer, table: dict[str, Any]) -> None:
    """While `eio` serves a websocket, `table[sid]` is its `EngineWire` (this server only)."""
    # A copy: the driver table is module-level and shared by every Engine.IO server.
    eio._async = {**eio._async, "websocket": partial(RecordingWebSocket, table)}


class RecordingWebSocket(EngineWebSocket):  # type: ignore[misc]
    """Engine.IO's ASGI websocket, noting its session's transport while it is open."""

    def __init__(self, table: dict[str, Any], handler: Any, server: engineio.AsyncServer) -> None:
        super().__init__(handler, server)
        self.table = table

    async def __call__(self, environ: dict[str, Any]) -> Any:
        socket = getattr(self.handler, "__self__", None)  # the session's AsyncSocket
        protocol = getattr(environ.get("asgi.send"), "__self__", None)
        transport = getattr(protocol, "transport", None)
        # uvloop's transports do not subclass asyncio.Transport: check what is used.
        if socket is None or not hasattr(transport, "get_write_buffer_size"):
            # Wrapped by middleware or an unknown server: Engine.IO's own path only.
            return await super().__call__(environ)
        sid: str = socket.sid
        self.table[sid] = EngineWire(socket, protocol, cast(asyncio.Transport, transport))
        try:
            return await super().__call__(environ)
        finally:
            self.table.pop(sid, None)


# -- python-socketio -------------------------------------------------------------------------


class SocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server on `Sessions`, plus a deadline for the Socket.IO CONNECT.

    python-socketio keeps an Engine.IO session that never connects a namespace open
    forever; left alone, idle sockets would pile up.
    """

    eio: Sessions

    def __init__(
        self,
        *,
        connect_timeout_s: float,
        sid_prefix: str = "",
        inbound_limits: InboundLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.eio.sid_prefix = sid_prefix
        self.eio.limits = inbound_limits
        self.connect_timeout_s = connect_timeout_s
        self._closing: set[asyncio.Task[None]] = set()
        # Fields added to a socket's CONNECT answer (its recovery `pid`), by Socket.IO sid:
        # set by the connect handler, taken when the answer goes out.
        self.connect_answers: dict[str, dict[str, Any]] = {}
        # Called with the Socket.IO sid once a CONNECT was answered with success.
        self.on_connected: Callable[[str], Awaitable[None]] | None = None

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return Sessions

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        result = await super()._handle_eio_connect(eio_sid, environ)
        asyncio.get_running_loop().call_later(
            self.connect_timeout_s, self._close_if_unconnected, eio_sid
        )
        return result

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        # python-socketio answers a CONNECT with `{"sid"}`; connection state recovery
        # (Socket.IO v4.6+) needs `{"sid", "pid"}`, so the answer takes what the handler left.
        if pkt.packet_type == sio_packet.CONNECT and isinstance(pkt.data, dict):
            extra = self.connect_answers.pop(str(pkt.data.get("sid")), None)
            if extra:
                pkt.data = {**pkt.data, **extra}
        await super()._send_packet(eio_sid, pkt)

    async def _handle_connect(self, eio_sid: str, namespace: str | None, data: Any) -> None:
        await super()._handle_connect(eio_sid, namespace, data)
        sid = self.sid_of(eio_sid, namespace or "/")
        if sid is not None:
            self.connect_answers.pop(sid, None)
            if self.on_connected is not None:
                await self.on_connected(sid)

    def _close_if_unconnected(self, eio_sid: str) -> None:
        if eio_sid not in self.environ:  # already gone
            return
        if self.sid_of(eio_sid) is not None:
            return
        task = asyncio.create_task(self.eio.end(eio_sid, REASON.SERVER_DISCONNECT))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def sid_of(self, eio_sid: str, namespace: str = "/") -> str | None:
        """The Socket.IO sid connected on Engine.IO session `eio_sid` (None before CONNECT)."""
        sid: str | None = self.manager.sid_from_eio_sid(eio_sid, namespace)
        return sid

    def eio_sid_of(self, sid: str, namespace: str = "/") -> str:
        """The Engine.IO session a Socket.IO sid is connected on."""
        eio_sid: str = self.manager.eio_sid_from_sid(sid, namespace)
        return eio_sid

    def event_message(self, name: str, data: Any, offset: str | None = None) -> eio_packet.Packet:
        """The Engine.IO message carrying Socket.IO event `name` with `data` on "/", and
        `offset` as the last argument (what a recovering client presents back)."""
        args = [name, data] if offset is None else [name, data, offset]
        packet = self.packet_class(sio_packet.EVENT, namespace="/", data=args)
        return eio_packet.Packet(eio_packet.MESSAGE, packet.encode())


# -- uvicorn -----------------------------------------------------------------------------------


class Server(uvicorn.Server):
    """uvicorn, minus its own signal handling: `azora` (or a test) decides what a signal stops.

    `listen = False` serves no listening socket, only the connections handed to
    `new_connection()`; `on_started()` runs once start-up (the app's lifespan) is done and
    `on_stopping()` before uvicorn shuts down.
    """

    listen = True

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets if self.listen else [])
        self.on_started()

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        self.on_stopping()
        await super().shutdown(sockets)

    def on_started(self) -> None:
        pass

    def on_stopping(self) -> None:
        pass

    def new_connection(self) -> asyncio.Protocol:
        """What uvicorn's own listener makes for each accepted connection (once started)."""
        config = self.config
        protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol


def other_websocket(config: Any, server_state: Any, app_state: dict[str, Any]) -> asyncio.Protocol:
    """uvicorn's own websocket protocol, for a websocket a direct session does not serve.

    (uvicorn makes its `ws` protocol with these three arguments, as a direct session is.)
    """
    return WebSocketsSansIOProtocol(config=config, server_state=server_state, app_state=app_state)


def track_connection(server_state: Any, protocol: asyncio.Protocol) -> None:
    """Count `protocol` among uvicorn's connections: its `shutdown()` is called when uvicorn
    stops, and uvicorn waits for it to close."""
    server_state.connections.add(protocol)


def untrack_connection(server_state: Any, protocol: asyncio.Protocol) -> None:
    server_state.connections.discard(protocol)
