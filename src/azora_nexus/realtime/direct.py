"""Engine.IO sessions opened on a websocket, served by one small object per socket.

A client that opens its session on a websocket (`/socket.io/?EIO=4&transport=websocket`
with no sid: socket.io-client with `transports: ["websocket"]`) needs none of Engine.IO's
per-socket machinery: no packet queue and writer task (nothing to poll), no ping task, no
ASGI scope and receive queue. `DirectWebSocket` is uvicorn's websocket protocol for Nexus:
it answers such a handshake itself and then is the session Engine.IO and the fan-out see
(in `eio.sockets` and in `Wires`), a few hundred bytes instead of tens of KB. It speaks
the websocket framing (`framing.py` parses) and Engine.IO v4 packets (open, ping/pong,
message, close); every Socket.IO packet still goes to python-socketio's handlers
(connect and auth, events, acks, disconnect), as Engine.IO would hand them over. What this
takes of the libraries' internals is in `engine.py`.
Every other websocket (an upgrade from polling, a non-Engine.IO path) is passed to
uvicorn's own protocol unchanged. The node's `Heartbeat` pings every direct socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from engineio import packet as eio_packet

from azora_nexus.realtime.engine import (
    REASON,
    EngineSession,
    other_websocket,
    track_connection,
    untrack_connection,
)
from azora_nexus.realtime.framing import (
    CLOSE_INVALID_DATA,
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_SERVICE_RESTART,
    CLOSE_TOO_BIG,
    FrameError,
    accept_key,
    close_frame,
    next_frame,
    parse_upgrade,
)
from azora_nexus.realtime.limits import INBOUND_LIMIT, Meter
from azora_nexus.realtime.wire import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    frame,
    text_frame,
)

if TYPE_CHECKING:
    from azora_nexus.realtime.namespace import Realtime

logger = logging.getLogger(__name__)

# Where `create_api`'s lifespan puts the node's Realtime for this protocol to find it.
REALTIME_STATE_KEY = "azora.realtime"
SOCKETIO_PATH = b"/socket.io/"
PING_FRAME = text_frame(b"2")
# Jobs a session's inbox holds before the client is read no more (until half are done).
MAX_INBOX = 64
# How long a socket closed for flooding has to read its close frame before it is cut.
CLOSE_GRACE_S = 1.0


class DirectWebSocket(EngineSession, asyncio.Protocol):
    """A websocket connection: an Engine.IO session served here, or uvicorn's protocol's."""

    __slots__ = (
        "app_state",
        "buffer",
        "closed",
        "closing",
        "config",
        "fallback",
        "fragments",
        "inbox",
        "last_seen",
        "meter",
        "paused",
        "reading_paused",
        "realtime",
        "server_state",
        "session",
        "sid",
        "transport",
    )

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any]) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.transport = cast(asyncio.Transport, None)
        self.fallback: asyncio.Protocol | None = None
        self.realtime: Realtime | None = None
        self.sid = ""
        self.buffer = bytearray()
        self.fragments: list[bytes] | None = None  # a message's frames so far (opcode first)
        # What Socket.IO must see of this session, in order: connect, messages, disconnect.
        self.inbox: deque[Callable[[], Awaitable[None]]] | None = None
        self.reading_paused = False  # while the inbox is full
        self.meter = Meter()  # what the client sent this second (realtime/limits.py)
        self.closing = self.closed = False
        self.paused: asyncio.Future[None] | None = None
        self.last_seen = 0.0
        self.session: dict[str, Any] = {}  # Engine.IO's per-session dict (Socket.IO uses it)

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.fallback is not None:
            self.fallback.data_received(data)
        elif self.sid:
            self._receive_frames(data)
        else:
            self._handshake(data)  # uvicorn hands over the whole upgrade request first

    def connection_lost(self, exc: Exception | None) -> None:
        if self.fallback is not None:
            self.fallback.connection_lost(exc)
            return
        untrack_connection(self.server_state, self)
        if self.paused is not None and not self.paused.done():
            self.paused.set_result(None)
        if self.sid and not self.closing:
            self.closed = self.closing = True
            self._enqueue(partial(self._disconnected, REASON.TRANSPORT_CLOSE))

    def pause_writing(self) -> None:
        if self.fallback is not None:
            self.fallback.pause_writing()
        elif self.paused is None or self.paused.done():
            self.paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.fallback is not None:
            self.fallback.resume_writing()
        elif self.paused is not None and not self.paused.done():
            self.paused.set_result(None)

    def shutdown(self) -> None:
        """uvicorn stops: tell the client to come back (to this node or another)."""
        if not self.transport.is_closing():
            self.transport.write(close_frame(CLOSE_SERVICE_RESTART))
            self.transport.close()

    # -- the fan-out's Wire -----------------------------------------------------------------

    def open(self) -> bool:
        return not (self.closing or self.transport.is_closing())

    def in_turn(self) -> bool:
        return True  # every packet of this session is written at once, in order

    async def writable(self) -> None:
        if self.paused is not None:
            await self.paused

    # -- Engine.IO's session interface (engine.EngineSession) -------------------------------

    async def close(
        self, wait: bool = True, abort: bool = False, reason: str | None = None
    ) -> None:
        """Close the session. Its disconnect reaches Socket.IO after the packets before it
        (not before this returns: a handler of this session may be the caller)."""
        if self.closing:
            return
        self.closing = True
        self._enqueue(partial(self._disconnected, reason or REASON.SERVER_DISCONNECT))
        if abort:
            self.transport.abort()
        elif not self.transport.is_closing():
            self.write_packet(eio_packet.Packet(eio_packet.CLOSE))
            self.transport.write(close_frame(CLOSE_NORMAL))
            self.transport.close()
        self.closed = True

    # -- the session -------------------------------------------------------------------------

    def write_packet(self, pkt: eio_packet.Packet) -> None:
        if self.closed or self.transport.is_closing():
            return
        encoded = pkt.encode()
        if isinstance(encoded, bytes):
            self.transport.write(frame(OP_BINARY, encoded))
        else:
            self.transport.write(text_frame(encoded.encode()))

    def ping(self) -> None:
        """The heartbeat's ping (Engine.IO's "2"; the client answers "3")."""
        if not (self.closing or self.transport.is_closing()):
            self.transport.write(PING_FRAME)

    def time_out(self) -> None:
        """The client did not answer a ping in time: close, as Engine.IO does."""
        if not (self.closing or self.transport.is_closing()):
            self._spawn(self.close(abort=True, reason=REASON.PING_TIMEOUT))

    def _handshake(self, request: bytes) -> None:
        realtime: Realtime | None = self.app_state.get(REALTIME_STATE_KEY)
        path, query, headers = parse_upgrade(request)
        key = headers.get(b"sec-websocket-key")
        if (
            realtime is None
            or path != SOCKETIO_PATH
            or query.get("EIO") != ["4"]
            or query.get("transport") != ["websocket"]
            or "sid" in query
            or headers.get(b"sec-websocket-version") != b"13"
            or key is None
        ):
            self._fall_back(request)
            return
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
        )
        self.realtime = realtime
        eio = realtime.sio.eio
        self.sid = eio.generate_id()
        self.last_seen = time.monotonic()
        track_connection(self.server_state, self)
        eio.adopt(self.sid, self)
        realtime.wires.by_sid[self.sid] = self
        realtime.heartbeat.sessions[self.sid] = self
        self.write_packet(
            eio_packet.Packet(
                eio_packet.OPEN,
                {
                    "sid": self.sid,
                    "upgrades": [],
                    "pingTimeout": int(eio.ping_timeout * 1000),
                    "pingInterval": int(eio.ping_interval * 1000),
                    "maxPayload": eio.max_http_buffer_size,
                },
            )
        )
        peer = self.transport.get_extra_info("peername")
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": SOCKETIO_PATH.decode(),
            "QUERY_STRING": request.split(b" ", 2)[1].partition(b"?")[2].decode("latin-1"),
            "REMOTE_ADDR": peer[0] if peer else "",
        }
        self._enqueue(partial(self._connect, environ))

    def _fall_back(self, request: bytes) -> None:
        protocol = other_websocket(self.config, self.server_state, self.app_state)
        self.fallback = protocol
        protocol.connection_made(self.transport)
        protocol.data_received(request)

    def _enqueue(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job` after this session's earlier jobs: python-socketio sees the connect,
        the messages and the disconnect in the order they happened (a disconnect never
        overtakes the CONNECT still being authorised). No task while there is nothing."""
        if self.inbox is None:
            self.inbox = deque((job,))
            self._spawn(self._work(self.inbox))
            return
        self.inbox.append(job)
        # A bounded inbox: read no more from the client until its backlog is handled.
        full = len(self.inbox) >= MAX_INBOX and not self.reading_paused
        if full and not self.transport.is_closing():
            self.transport.pause_reading()
            self.reading_paused = True

    async def _work(self, inbox: deque[Callable[[], Awaitable[None]]]) -> None:
        while inbox:
            try:
                await inbox[0]()
            except Exception:
                logger.exception("Engine.IO session %s: a handler failed", self.sid)
            inbox.popleft()
            if self.reading_paused and len(inbox) <= MAX_INBOX // 2:
                self.reading_paused = False
                if not self.transport.is_closing():
                    self.transport.resume_reading()
        self.inbox = None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        assert self.realtime is not None
        self.realtime.spawn(work)

    async def _connect(self, environ: dict[str, str]) -> None:
        assert self.realtime is not None
        accepted = await self.realtime.sio.eio.deliver("connect", self.sid, environ)
        if accepted is False:
            await self.close(reason=REASON.SERVER_DISCONNECT)

    async def _disconnected(self, reason: str) -> None:
        """Forget the session and tell python-socketio, once."""
        realtime = self.realtime
        if realtime is None or realtime.wires.by_sid.get(self.sid) is not self:
            return
        del realtime.wires.by_sid[self.sid]
        realtime.heartbeat.sessions.pop(self.sid, None)
        eio = realtime.sio.eio
        eio.release(self.sid, self)
        await eio.deliver("disconnect", self.sid, reason)

    async def _message(self, data: str | bytes) -> None:
        assert self.realtime is not None
        await self.realtime.sio.eio.deliver("message", self.sid, data)

    def _on_message(self, data: str | bytes) -> None:
        if not self.closing:
            self._enqueue(partial(self._message, data))

    def _receive_frames(self, data: bytes) -> None:
        """Handle the client's frames as they complete, within the inbound limits."""
        if self.closing:  # closed by the server: what comes now is not read
            return
        assert self.realtime is not None
        eio = self.realtime.sio.eio
        limits, limit = eio.limits, eio.max_http_buffer_size
        now = self.last_seen = time.monotonic()
        if limits is not None and (exceeded := limits.charge(self.meter, now, 0, len(data))):
            self._overflow(exceeded)
            return
        buffer = self.buffer
        buffer += data
        while not self.transport.is_closing():
            try:
                taken = next_frame(buffer, limit)
            except FrameError as error:
                self._fail(error.code)
                return
            if taken is None:
                return
            if limits is not None and (exceeded := limits.charge(self.meter, now, 1, 0)):
                self._overflow(exceeded)
                return
            self._on_frame(*taken, limit)

    def _overflow(self, exceeded: str) -> None:
        """Past the inbound limits: close with 1008 and the reason; what the client sent
        and the session has not handled yet is dropped."""
        logger.warning("socket %s closed: %s", self.sid, exceeded)
        self.buffer.clear()
        if self.inbox is not None:
            while len(self.inbox) > 1:  # the first is under way
                self.inbox.pop()
        if not self.closing:
            self.closing = self.closed = True
            self._enqueue(partial(self._disconnected, INBOUND_LIMIT))
        transport = self.transport
        if not transport.is_closing():
            # Closing with the client's flood unread would reset the connection and lose the
            # close frame: send it and a FIN, read no more, and cut the connection shortly.
            transport.write(close_frame(CLOSE_POLICY_VIOLATION, exceeded))
            if transport.can_write_eof():
                transport.write_eof()
            transport.pause_reading()
            asyncio.get_running_loop().call_later(CLOSE_GRACE_S, transport.abort)

    def _on_frame(self, opcode: int, final: bool, payload: bytes, limit: int) -> None:
        if opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
            self._assemble(opcode, final, payload, limit)
        elif opcode == OP_PING:
            self.transport.write(frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            if not self.transport.is_closing():
                self.transport.write(frame(OP_CLOSE, payload[:2]))
                self.transport.close()
        elif opcode != OP_PONG:
            self._fail(CLOSE_PROTOCOL_ERROR)

    def _assemble(self, opcode: int, final: bool, payload: bytes, limit: int) -> None:
        """A data frame: a whole message, or a part of one (capped as a whole, too)."""
        fragments = self.fragments
        if opcode != OP_CONTINUATION:
            if fragments is not None:  # a new message before the last one ended
                self._fail(CLOSE_PROTOCOL_ERROR)
            elif final:
                self._on_packet(opcode, payload)
            else:
                self.fragments = [bytes((opcode,)), payload]
            return
        if fragments is None:
            self._fail(CLOSE_PROTOCOL_ERROR)
            return
        fragments.append(payload)
        if sum(map(len, fragments)) - 1 > limit:
            self._fail(CLOSE_TOO_BIG)
        elif final:
            self.fragments = None
            self._on_packet(fragments[0][0], b"".join(fragments[1:]))

    def _on_packet(self, opcode: int, payload: bytes) -> None:
        """One Engine.IO packet: binary data is a message; text starts with its type."""
        if opcode == OP_BINARY:
            self._on_message(payload)
            return
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            self._fail(CLOSE_INVALID_DATA)
            return
        kind = text[:1]
        if kind == "4":
            self._on_message(text[1:])
        elif kind == "2":  # a client's ping (Engine.IO v3 habit): answer it
            self.transport.write(text_frame(b"3" + payload[1:]))
        elif kind == "1":
            self._spawn(self.close(reason=REASON.CLIENT_DISCONNECT))
        # "3" (pong) only refreshed last_seen; "6" (noop) and the rest mean nothing here.

    def _fail(self, code: int) -> None:
        """A protocol violation: close with `code`, as RFC 6455 asks."""
        if not self.transport.is_closing():
            self.transport.write(close_frame(code))
            self.transport.close()
