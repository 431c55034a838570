"""The Socket.IO server (protocol v5, ASGI) that shares the port with the HTTP API."""

from __future__ import annotations

import socketio


def create_socketio_server() -> socketio.AsyncServer:
    """A Socket.IO server; the realtime handlers are registered on it by `app.py`."""
    return socketio.AsyncServer(
        async_mode="asgi", cors_allowed_origins="*", transports=["polling", "websocket"]
    )
