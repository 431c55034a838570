"""Each websocket's asyncio transport, so an event's frame can be written to it directly.

A `Wire` is what the fan-out writes to. Sessions opened on a websocket are served by
`realtime/direct.py`, which is its own wire. Sessions that Engine.IO serves (polling, and
polling upgraded to websocket) keep python-socketio's machinery, whose Engine.IO writes
every packet through a per-socket queue and writer task; for those this module records the
transport under uvicorn's websocket protocol and says when writing to it directly keeps
the socket's packets in order (`EngineWire`).

It hooks Engine.IO's websocket wrapper (`server._async["websocket"]`, private): a test
asserts that events take this path, so an upgrade that moves the hook fails loudly.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, cast

import engineio
from engineio.async_drivers.asgi import WebSocket

# Websocket opcodes (RFC 6455, 5.2).
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
FIN = 0x80


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final websocket frame: server frames are never masked (RFC 6455, 5.1),
    so the bytes of an event's frame are the same for every socket."""
    size = len(payload)
    first = FIN | opcode
    if size < 126:
        return bytes((first, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final websocket text frame carrying `payload`."""
    return frame(OP_TEXT, payload)


class Wire(Protocol):
    """A websocket the fan-out may write frames to."""

    @property
    def transport(self) -> asyncio.Transport: ...

    def open(self) -> bool:
        """Whether frames written now can still reach the client."""
        ...

    def in_turn(self) -> bool:
        """Whether a frame written now comes after every packet the socket was sent before."""
        ...

    async def writable(self) -> None:
        """Wait until the transport is below its high-water mark."""
        ...


@dataclass(eq=False, slots=True)
class EngineWire:
    """A websocket Engine.IO serves: its socket, uvicorn protocol and asyncio transport."""

    socket: Any  # engineio.async_socket.AsyncSocket
    protocol: Any  # uvicorn's websocket protocol, which owns the transport
    transport: asyncio.Transport

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


class Wires:
    """The websocket sessions of this node by Engine.IO sid."""

    def __init__(self) -> None:
        self.by_sid: dict[str, Wire] = {}

    def get(self, eio_sid: str) -> Wire | None:
        return self.by_sid.get(eio_sid)

    def install(self, eio: engineio.AsyncServer) -> None:
        """Record the transport of each websocket `eio` serves (this server only)."""
        # A copy: the driver table is module-level and shared by every Engine.IO server.
        eio._async = {**eio._async, "websocket": partial(RecordingWebSocket, self)}


class RecordingWebSocket(WebSocket):  # type: ignore[misc]
    """Engine.IO's ASGI websocket, noting its session's transport while it is open."""

    def __init__(self, wires: Wires, handler: Any, server: engineio.AsyncServer) -> None:
        super().__init__(handler, server)
        self.wires = wires

    async def __call__(self, environ: dict[str, Any]) -> Any:
        socket = getattr(self.handler, "__self__", None)  # the session's AsyncSocket
        protocol = getattr(environ.get("asgi.send"), "__self__", None)
        transport = getattr(protocol, "transport", None)
        # uvloop's transports do not subclass asyncio.Transport: check what is used.
        if socket is None or not hasattr(transport, "get_write_buffer_size"):
            # Wrapped by middleware or an unknown server: Engine.IO's own path only.
            return await super().__call__(environ)
        sid: str = socket.sid
        self.wires.by_sid[sid] = EngineWire(socket, protocol, cast(asyncio.Transport, transport))
        try:
            return await super().__call__(environ)
        finally:
            self.wires.by_sid.pop(sid, None)
