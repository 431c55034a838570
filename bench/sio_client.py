"""A cheap Socket.IO v5 client (Engine.IO v4, websocket transport only) for load generation.

It speaks just what a subscriber needs: the Engine.IO open packet, CONNECT to `/` with
`auth`, pings, events and acks. No polling, no reconnection, no binary attachments: the
bench wants thousands of these per process, each costing one picows protocol object.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

# Engine.IO packet types (first character of a frame) and Socket.IO types (second).
EIO_OPEN, EIO_CLOSE, EIO_PING, EIO_PONG, EIO_MESSAGE = (ord(c) for c in "01234")
SIO_CONNECT, SIO_DISCONNECT, SIO_EVENT, SIO_ACK, SIO_CONNECT_ERROR = (ord(c) for c in "01234")

EventHandler = Callable[[str, Any, int], None]
"""Called with the event name, its argument and the receive time (ns since the epoch)."""


class SocketIOError(Exception):
    """The server refused the connection or closed it."""


def socket_url(base_url: str) -> str:
    """The Engine.IO websocket address of a server given as http://host:port."""
    host = base_url.removeprefix("http://").removeprefix("ws://").rstrip("/")
    return f"ws://{host}/socket.io/?EIO=4&transport=websocket"


class SioListener(WSListener):
    """One socket's protocol state, driven frame by frame by picows."""

    def __init__(self, auth: dict[str, Any] | None, on_event: EventHandler) -> None:
        super().__init__()
        self.connect_packet = b"40" + (orjson.dumps(auth) if auth is not None else b"")
        self.on_event = on_event
        loop = asyncio.get_running_loop()
        self.connected: asyncio.Future[str] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.acks: dict[int, asyncio.Future[Any]] = {}
        self.next_ack_id = 0
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        error = SocketIOError("the connection closed")
        if not self.connected.done():
            self.connected.set_exception(error)
        for waiter in self.acks.values():
            if not waiter.done():
                waiter.set_exception(error)
        self.acks.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            if frame.msg_type is WSMsgType.CLOSE:
                transport.disconnect()
            return
        received_ns = time.time_ns()
        data = frame.get_payload_as_bytes()
        kind = data[0]
        if kind == EIO_MESSAGE:
            self._on_message(data, received_ns)
        elif kind == EIO_PING:
            transport.send(WSMsgType.TEXT, b"3" + data[1:])
        elif kind == EIO_OPEN:
            transport.send(WSMsgType.TEXT, self.connect_packet)
        elif kind == EIO_CLOSE:
            transport.disconnect()

    def _on_message(self, data: bytes, received_ns: int) -> None:
        kind = data[1]
        if kind == SIO_EVENT:
            # [name, envelope, offset]: the offset is for clients that recover (CSR).
            name, argument = orjson.loads(data[2:])[:2]
            self.on_event(name, argument, received_ns)
        elif kind == SIO_ACK:
            body = data.index(b"[")
            waiter = self.acks.pop(int(data[2:body]), None)
            if waiter is not None and not waiter.done():
                arguments = orjson.loads(data[body:])
                waiter.set_result(arguments[0] if arguments else None)
        elif kind == SIO_CONNECT and not self.connected.done():
            self.connected.set_result(orjson.loads(data[2:])["sid"])
        elif kind == SIO_CONNECT_ERROR and not self.connected.done():
            reason = orjson.loads(data[2:]).get("message", "refused")
            self.connected.set_exception(SocketIOError(f"connect_error: {reason}"))
        elif kind == SIO_DISCONNECT and self.transport is not None:
            self.transport.disconnect()


class SioClient:
    """A connected socket: emit with an ack, and close."""

    def __init__(self, transport: WSTransport, listener: SioListener, sid: str) -> None:
        self.transport = transport
        self.listener = listener
        self.sid = sid

    @classmethod
    async def connect(
        cls,
        base_url: str,
        auth: dict[str, Any] | None,
        on_event: EventHandler,
        *,
        timeout_s: float = 10.0,
    ) -> SioClient:
        """A socket connected to namespace `/` with `auth`; SocketIOError when refused."""
        holder: list[SioListener] = []

        def listener_factory() -> SioListener:
            holder.append(SioListener(auth, on_event))
            return holder[0]

        async with asyncio.timeout(timeout_s):
            transport, _ = await ws_connect(
                listener_factory, socket_url(base_url), websocket_handshake_timeout=timeout_s
            )
            try:
                sid = await holder[0].connected
            except BaseException:
                transport.disconnect()
                raise
        return cls(transport, holder[0], sid)

    async def call(self, event: str, argument: Any, *, timeout_s: float = 10.0) -> Any:
        """Emit `event` with an ack id and return the ack's first argument."""
        listener = self.listener
        ack_id = listener.next_ack_id
        listener.next_ack_id += 1
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        listener.acks[ack_id] = waiter
        packet = b"42" + str(ack_id).encode() + orjson.dumps([event, argument])
        self.transport.send(WSMsgType.TEXT, packet)
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter
        finally:
            listener.acks.pop(ack_id, None)

    @property
    def is_open(self) -> bool:
        return not self.listener.closed.done()

    async def close(self) -> None:
        """Leave the namespace and close the websocket."""
        if self.is_open:
            self.transport.send(WSMsgType.TEXT, b"41")
            self.transport.send_close()
            self.transport.disconnect()
            await self.transport.wait_disconnected()
