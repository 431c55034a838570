"""Every route caps its body while it streams in, before parsing and before authentication:
a 300 MB upload, declared or chunked, authenticated or not, is answered 413 after at most
the limit's worth of bytes, and the node's memory does not follow the upload."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

import orjson
import psutil
import pytest

from azora_nexus.app import create_app
from azora_nexus.auth.tokens import Role
from azora_nexus.config import Settings
from tests.conftest import auth_header
from tests.security.served import RawResponse, Served, read_response
from tests.support.server import serve_app

UPLOAD_BYTES = 300 * 1024 * 1024
CHUNK = b"x" * (1024 * 1024)
# What the node may grow by while a 300 MB body is thrown at it (it used to hold all of it).
MAX_GROWTH_BYTES = 48 * 1024 * 1024


class PeakRss:
    """The highest RSS of this process (the node runs in it) while sampling."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.start = self.process.memory_info().rss
        self.peak = self.start

    async def sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(0.01)

    @property
    def growth(self) -> int:
        return self.peak - self.start


async def upload(
    port: int, head: str, chunks: AsyncIterator[bytes] | None = None
) -> tuple[RawResponse, int]:
    """Send `head` then the chunks until the node answers; the answer and the bytes sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0

    async def send() -> None:
        nonlocal sent
        writer.write(head.encode())
        if chunks is None:
            return
        async for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)

    sender = asyncio.create_task(send())
    try:
        response = await asyncio.wait_for(read_response(reader), 30)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sender
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return response, sent


async def plain(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield CHUNK


async def chunked(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
    yield b"0\r\n\r\n"


def request_head(method: str, path: str, framing: str, headers: dict[str, str] | None) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: nexus", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(framing)
    return "\r\n".join(lines) + "\r\n\r\n"


def assert_refused(response: RawResponse, limit: int) -> None:
    assert response.status == 413
    assert orjson.loads(response.body) == {
        "error": {
            "code": "payload_too_large",
            "message": f"the body may take at most {limit} bytes",
        }
    }


@pytest.mark.parametrize("framing", ["declared", "chunked"])
@pytest.mark.parametrize("who", ["anonymous", "user"])
async def test_a_300_mb_body_is_refused_before_it_is_read(
    served: Served, framing: str, who: str
) -> None:
    user_id = "00000000-0000-0000-0000-000000000001"
    path, method = "/api/wallets/transfer", "POST"
    headers = None
    if who == "user":
        path, method = f"/api/users/{user_id}/profile", "PATCH"
        headers = auth_header(Role.USER, user_id)
    head = request_head(
        method,
        path,
        f"Content-Length: {UPLOAD_BYTES}"
        if framing == "declared"
        else "Transfer-Encoding: chunked",
        headers,
    )
    rss = PeakRss()
    sampler = asyncio.create_task(rss.sample())
    try:
        body = plain(UPLOAD_BYTES) if framing == "declared" else chunked(UPLOAD_BYTES)
        response, sent = await upload(served.port, head, body)
    finally:
        sampler.cancel()
    assert_refused(response, 1024 * 1024)
    assert sent < UPLOAD_BYTES // 4, "the node read on after it had answered"
    assert rss.growth < MAX_GROWTH_BYTES, f"the node grew by {rss.growth / 2**20:.0f} MiB"


async def test_the_limits_are_configurable_and_events_have_their_own(settings: Settings) -> None:
    tight = settings.model_copy(update={"max_body_bytes": 2000, "max_event_body_bytes": 1000})
    async with serve_app(create_app(tight), tight) as url:
        port = int(url.rsplit(":", 1)[1])

        async def post(path: str, size: int) -> RawResponse:
            body = orjson.dumps({"email": "a@example.com", "password": "x" * size})
            head = request_head(
                "POST", path, f"Content-Length: {len(body)}", auth_header(Role.SERVICE)
            )
            response, _ = await upload(port, head + body.decode())
            return response

        assert (await post("/api/auth/login", 1500)).status == 422  # read and checked
        assert_refused(await post("/api/auth/login", 2500), 2000)
        assert (await post("/events", 500)).status == 422  # within the limit: read and checked
        assert_refused(await post("/events", 1500), 1000)


async def test_a_body_within_the_limit_reaches_the_route_whole(served: Served) -> None:
    """Chunked bodies within the limit are replayed to the app unchanged."""
    name = f"u{secrets.token_hex(4)}"
    body = orjson.dumps({"email": f"{name}@example.com", "username": name, "password": "p" * 20})

    async def pieces() -> AsyncIterator[bytes]:
        for at in range(0, len(body), 7):
            piece = body[at : at + 7]
            yield b"%x\r\n%s\r\n" % (len(piece), piece)
        yield b"0\r\n\r\n"

    head = request_head("POST", "/api/auth/register", "Transfer-Encoding: chunked", None)
    response, _ = await upload(served.port, head, pieces())
    assert response.status == 201, response.body
    assert orjson.loads(response.body)["user"]["username"] == name
