"""The Socket.IO server (protocol v5, ASGI) that shares the port with the HTTP API."""

from __future__ import annotations

import asyncio
from typing import Any

import engineio
import socketio

# Socket.IO packets from clients are small (subscribe, ping); refuse anything bigger.
MAX_PACKET_BYTES = 64 * 1024


class OwnedSessions(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO whose session ids name their worker, so a sticky router can find it.

    A sid reads `<worker>.<random>`: the part before the dot says which worker process
    holds the session (`workers/routing.py`); the rest is Engine.IO's own id.
    """

    sid_prefix = ""

    def generate_id(self) -> str:
        sid: str = super().generate_id()
        return self.sid_prefix + sid


class NexusSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server, plus a deadline for the Socket.IO CONNECT packet.

    python-socketio keeps an Engine.IO session that never connects a namespace open
    forever; left alone, idle sockets would pile up.
    """

    def __init__(self, *, connect_timeout_s: float, sid_prefix: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.eio.sid_prefix = sid_prefix
        self.connect_timeout_s = connect_timeout_s
        self._closing: set[asyncio.Task[None]] = set()

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return OwnedSessions

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


def create_socketio_server(
    *, connect_timeout_s: float = 10.0, sid_prefix: str = ""
) -> socketio.AsyncServer:
    """A Socket.IO server; the realtime handlers are registered on it by `app.py`.

    `sid_prefix` starts every Engine.IO session id (a worker's `<index>.`).
    """
    return NexusSocketServer(
        connect_timeout_s=connect_timeout_s,
        sid_prefix=sid_prefix,
        async_mode="asgi",
        cors_allowed_origins="*",
        transports=["polling", "websocket"],
        max_http_buffer_size=MAX_PACKET_BYTES,
    )
