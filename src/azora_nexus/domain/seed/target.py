"""Where the seed writes: the data dir's servers (a running node's, or ours for the run)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from azora_nexus.auth.tokens import Principal, Role, resolve_secret
from azora_nexus.backends.launcher import attach_backends
from azora_nexus.cache.cache import Cache, CacheOptions, open_cache
from azora_nexus.config import Settings
from azora_nexus.database.engine import Database, open_database
from azora_nexus.database.migrate import upgrade
from azora_nexus.sync import bind_cache

# Who the seed's service-level writes are recorded as (`created_by` of courses and rewards).
SEEDER = Principal(user_id="seed", role=Role.SERVICE)


@dataclass(frozen=True)
class SeedTarget:
    """An open database whose sessions invalidate through the cache, and the token secret."""

    db: Database
    cache: Cache
    jwt_secret: str


@asynccontextmanager
async def open_target(settings: Settings) -> AsyncIterator[SeedTarget]:
    """The servers of a running `azora up` on this data dir (or the URLs set, or embedded
    servers started for the duration), with the schema migrated to head."""
    async with attach_backends(settings) as urls:
        await upgrade(urls.database)
        async with (
            open_database(urls.database) as db,
            open_cache(urls.redis, CacheOptions.from_settings(settings)) as cache,
        ):
            # Writes invalidate what a running node has cached, as its own writes do.
            bind_cache(db.sessions, cache)
            yield SeedTarget(db=db, cache=cache, jwt_secret=resolve_secret(settings))
