"""RFC 6455 pieces the direct websocket path needs: reading the upgrade request, the
handshake's accept key, close frames, and taking a client's (masked) frames off a buffer."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs

from azora_nexus.realtime.engine import apply_mask
from azora_nexus.realtime.wire import OP_CLOSE, frame

HANDSHAKE_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, 1.3
# Close codes (RFC 6455, 7.4.1).
CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, CLOSE_INVALID_DATA = 1000, 1002, 1007
CLOSE_POLICY_VIOLATION, CLOSE_TOO_BIG, CLOSE_SERVICE_RESTART = 1008, 1009, 1012


class FrameError(Exception):
    """The client broke the protocol: close the connection with `code`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def parse_upgrade(request: bytes) -> tuple[bytes, dict[str, list[str]], dict[bytes, bytes]]:
    """The path, query and headers (lower-case names) of an upgrade request uvicorn rebuilt."""
    lines = request.split(b"\r\n")
    target = lines[0].split(b" ")[1] if lines[0].count(b" ") == 2 else b""
    path, _, query = target.partition(b"?")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return path, parse_qs(query.decode("latin-1")), headers


def accept_key(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept answering the client's Sec-WebSocket-Key (RFC 6455, 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + HANDSHAKE_GUID).digest())


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with `code` and `reason` (cut to the 123 bytes a control frame allows)."""
    return frame(OP_CLOSE, code.to_bytes(2, "big") + reason.encode()[:123])


def next_frame(buffer: bytearray, limit: int) -> tuple[int, bool, bytes] | None:
    """Take the next whole client frame off `buffer`: (opcode, final, unmasked payload).

    None while the frame is incomplete; FrameError for an unmasked frame (clients must
    mask, RFC 6455 5.3), a fragmented or oversized control frame, or a payload past `limit`.
    """
    if len(buffer) < 2:
        return None
    first, second = buffer[0], buffer[1]
    size, start = second & 0x7F, 2
    if size == 126:
        if len(buffer) < 4:
            return None
        size, start = int.from_bytes(buffer[2:4], "big"), 4
    elif size == 127:
        if len(buffer) < 10:
            return None
        size, start = int.from_bytes(buffer[2:10], "big"), 10
    if not second & 0x80:
        raise FrameError(CLOSE_PROTOCOL_ERROR)
    opcode, final = first & 0x0F, bool(first & 0x80)
    if opcode >= OP_CLOSE and (not final or size > 125):  # a control frame
        raise FrameError(CLOSE_PROTOCOL_ERROR)
    if size > limit:
        raise FrameError(CLOSE_TOO_BIG)
    end = start + 4 + size
    if len(buffer) < end:
        return None
    payload = apply_mask(bytes(buffer[start + 4 : end]), bytes(buffer[start : start + 4]))
    del buffer[:end]
    return opcode, final, payload
