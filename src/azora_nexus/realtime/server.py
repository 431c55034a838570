"""The Socket.IO server (protocol v5, ASGI) that shares the port with the HTTP API."""

from __future__ import annotations

from azora_nexus.config import Settings
from azora_nexus.realtime.engine import SocketServer
from azora_nexus.realtime.limits import InboundLimits

# Socket.IO packets from clients are small (subscribe, ping); refuse anything bigger.
MAX_PACKET_BYTES = 64 * 1024


def create_socketio_server(settings: Settings, *, sid_prefix: str = "") -> SocketServer:
    """A Socket.IO server; the realtime handlers are registered on it by `app.py`.

    `sid_prefix` starts every Engine.IO session id (a worker's `<index>.`).
    """
    return SocketServer(
        connect_timeout_s=settings.socket_connect_timeout_s,
        sid_prefix=sid_prefix,
        async_mode="asgi",
        cors_allowed_origins="*",
        # The polling handshake names its session in a header too, so a load balancer can
        # send the session's later requests (`?sid=`) to this node: HAProxy's stick rules
        # read headers, not bodies (deploy/haproxy/haproxy.cfg).
        cookie={"name": "io", "path": "/socket.io", "HttpOnly": True, "SameSite": "Lax"},
        transports=["polling", "websocket"],
        max_http_buffer_size=MAX_PACKET_BYTES,
        ping_interval=settings.socket_ping_interval_s,
        ping_timeout=settings.socket_ping_timeout_s,
        inbound_limits=InboundLimits(
            packets_per_s=settings.socket_max_packets_per_s,
            bytes_per_s=settings.socket_max_bytes_per_s,
        ),
    )
