"""The Socket.IO server (protocol v5, ASGI) that shares the port with the HTTP API."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

# Socket.IO packets from clients are small (subscribe, ping); refuse anything bigger.
MAX_PACKET_BYTES = 64 * 1024


class NexusSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, plus a deadline for the Socket.IO CONNECT packet.

    python-socketio keeps an Engine.IO session that never connects a namespace open
    forever; left alone, idle sockets would pile up.
    """

    def __init__(self, *, connect_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connect_timeout_s = connect_timeout_s
        self._closing: set[asyncio.Task[None]] = set()

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        result = await super()._handle_eio_connect(eio_sid, environ)
        asyncio.get_running_loop().call_later(
            self.connect_timeout_s, self._close_if_unconnected, eio_sid
        )
        return result

    def _close_if_unconnected(self, eio_sid: str) -> None:
        if eio_sid not in self.environ:  # already gone
            return
        if self.manager.sid_from_eio_sid(eio_sid, "/") is not None:
            return
        task = asyncio.create_task(self.eio.disconnect(eio_sid))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def create_socketio_server(*, connect_timeout_s: float = 10.0) -> socketio.AsyncServer:
    """A Socket.IO server; the realtime handlers are registered on it by `app.py`."""
    return NexusSocketServer(
        connect_timeout_s=connect_timeout_s,
        async_mode="asgi",
        cors_allowed_origins="*",
        transports=["polling", "websocket"],
        max_http_buffer_size=MAX_PACKET_BYTES,
    )
