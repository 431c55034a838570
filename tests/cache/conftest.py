"""Cache fixtures: a cache on the session's Redis and a scratch table in this test's database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from azora_nexus.cache import Cache, CacheOptions, open_cache
from azora_nexus.database.engine import Database, open_database
from tests.cache.cache_helpers import ProbeTable

OPTIONS = CacheOptions(retry_s=0.2, wait_s=1.0, lease_ttl_s=5.0)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with open_database(database_url) as opened:
        yield opened


@pytest.fixture
async def probe(db: Database) -> ProbeTable:
    """Eight rows at version 1."""
    table = ProbeTable(db)
    await table.create(8)
    return table


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[Cache]:
    async with open_cache(redis_url, OPTIONS) as opened:
        yield opened
