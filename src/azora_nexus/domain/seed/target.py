"""Where the seed writes: what it needs of an open Nexus (the CLI opens it with `open_nexus`)."""

from __future__ import annotations

from typing import Protocol

from azora_nexus.auth.tokens import Principal, Role
from azora_nexus.cache.cache import Cache
from azora_nexus.database.engine import Database

# Who the seed's service-level writes are recorded as (`created_by` of courses and rewards).
SEEDER = Principal(user_id="seed", role=Role.SERVICE)


class SeedTarget(Protocol):
    """An open database whose sessions invalidate through the cache, and the token secret."""

    @property
    def db(self) -> Database: ...

    @property
    def cache(self) -> Cache: ...

    @property
    def jwt_secret(self) -> str: ...
