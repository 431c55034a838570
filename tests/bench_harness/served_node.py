"""For the bench's tests: Nexus served in process (tests/support), as the bench sees a server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bench.fanout.server import NexusUnderTest

from azora_nexus.config import Settings
from tests.support.server import serve_node


@asynccontextmanager
async def serve_nexus(settings: Settings) -> AsyncIterator[NexusUnderTest]:
    """Nexus on 127.0.0.1 for `settings` (no pid: its usage is not measured)."""
    assert settings.jwt_secret is not None
    async with serve_node(settings) as node:
        yield NexusUnderTest(url=node.url, secret=settings.jwt_secret, pid=None)
