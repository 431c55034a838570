"""Each websocket's asyncio transport, so an event's frame can be written to it directly.

A `Wire` is what the fan-out writes to. Sessions opened on a websocket are served by
`realtime/direct.py`, which is its own wire. Sessions that Engine.IO serves (polling, and
polling upgraded to websocket) keep python-socketio's machinery, whose Engine.IO writes
every packet through a per-socket queue and writer task; for those, `engine.EngineWire`
holds the transport under uvicorn's websocket protocol and says when writing to it directly
keeps the socket's packets in order (`engine.record_websockets` puts it in `Wires`).
"""

from __future__ import annotations

import asyncio
import struct
from typing import Protocol

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


class Wires:
    """The websocket sessions of this node by Engine.IO sid."""

    def __init__(self) -> None:
        self.by_sid: dict[str, Wire] = {}

    def get(self, eio_sid: str) -> Wire | None:
        return self.by_sid.get(eio_sid)
