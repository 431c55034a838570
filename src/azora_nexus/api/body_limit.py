"""Request bodies are capped while they stream in, before any route, parser or auth sees them.

A body declared larger than the route's limit is refused at once, unread; a chunked one is
read up to the limit and refused as soon as it passes it. Either way the answer is 413 in
the contract's error shape, and whatever of the body still comes is dropped by the server
as it arrives (uvicorn discards a finished request's body), so memory does not follow the
upload. The connection is kept: closing it with the upload unread would make the kernel
reset it, and the client would likely never see the 413. A body within the limit is handed
to the app whole (it would read all of it anyway), and a client that leaves mid-body
reaches no app at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    """The body passed its limit while being read."""


@dataclass(frozen=True)
class BodyLimits:
    """The most bytes a request body may take: `max_bytes`, or a path's own limit."""

    max_bytes: int
    by_path: Mapping[str, int] = field(default_factory=dict)

    def for_path(self, path: str) -> int:
        return self.by_path.get(path, self.max_bytes)


def _declared(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length, and whether a body may come at all."""
    length: int | None = None
    chunked = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit():
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked or bool(length)


async def _refuse(send: Send, limit: int) -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"the body may take at most {limit} bytes",
            }
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_within(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None when it passes `limit` or the client leaves first."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # http.disconnect: nobody to answer
        body += message.get("body", b"")
        if len(body) > limit:
            raise _TooLarge
        if not message.get("more_body", False):
            return bytes(body)


async def limit_body(
    limits: BodyLimits, app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run `app` for this request only when its body is within the limit (module doc)."""
    if scope["type"] != "http":
        await app(scope, receive, send)
        return
    limit = limits.for_path(scope["path"])
    length, has_body = _declared(scope)
    if length is not None and length > limit:
        await _refuse(send, limit)
        return
    if not has_body:
        await app(scope, receive, send)
        return
    try:
        body = await _read_within(receive, limit)
    except _TooLarge:
        await _refuse(send, limit)
        return
    if body is None:
        return
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    await app(scope, replay, send)
