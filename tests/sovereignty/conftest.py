"""Fixtures for the data-sovereignty tests: a node over real TCP (HTTP and Socket.IO) and a
user with traces in every domain."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from httpx import AsyncClient

from azora_nexus.config import Settings
from tests.sovereignty.life import Life, live_a_life
from tests.support.server import Node, serve_node


@pytest.fixture
async def node(settings: Settings) -> AsyncIterator[Node]:
    """Nexus served on 127.0.0.1 for this test, as `azora up` serves it."""
    async with serve_node(settings) as running:
        yield running


@pytest.fixture
async def http(node: Node) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(base_url=node.url, timeout=30) as client:
        yield client


@pytest.fixture
async def life(http: AsyncClient, node: Node) -> Life:
    """Alice with traces in every domain, and Bob, her counterparty."""
    return await live_a_life(http, node.nexus.documents)
