"""For the security tests: Nexus served over real TCP on 127.0.0.1, and raw HTTP to it.

Fixtures live here (type-checked) and are re-exported by conftest.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from httpx import AsyncClient

from azora_nexus.config import Settings
from azora_nexus.nexus import Nexus
from tests.support.server import serve_node


@dataclass(frozen=True)
class Served:
    """A node on a real port: its base URL, port and open Nexus."""

    url: str
    port: int
    nexus: Nexus


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    """Nexus served on 127.0.0.1 for this test (tests/support: the production config)."""
    async with serve_node(settings) as node:
        port = int(node.url.rsplit(":", 1)[1])
        yield Served(url=node.url, port=port, nexus=node.nexus)


@pytest.fixture
async def http(served: Served) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(base_url=served.url, timeout=30) as client:
        yield client


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    """One HTTP/1.1 response with a Content-Length body."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawResponse(int(status_line.split()[1]), headers, body)
