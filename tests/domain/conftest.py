"""Fixtures for domain route tests: users to act as, the events a write left on the stream.

The app runs in process (`client`); setup and checks go straight to the test's database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from domain_helpers import Actor, Headers, MakeUser, ReadEvents
from httpx import AsyncClient
from sqlalchemy import text

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.cache.cache import Cache, open_cache
from azora_nexus.config import Settings
from azora_nexus.database.engine import Database, open_database


@pytest.fixture
def headers(settings: Settings) -> Headers:
    """`headers(role, sub)`: a bearer header the app under test accepts."""

    def make(role: Role, sub: str | None = None) -> dict[str, str]:
        assert settings.jwt_secret is not None
        token = issue_token(settings.jwt_secret, sub=sub or role.value, role=role)
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
async def domain_db(database_url: str) -> AsyncIterator[Database]:
    """The test's database, for setup and for checking what a route wrote."""
    async with open_database(database_url) as opened:
        yield opened


@pytest.fixture
def make_user(domain_db: Database, headers: Headers) -> MakeUser:
    """`await make_user()`: a new active user (no usable password) and its headers."""

    async def create(name: str | None = None, *, active: bool = True) -> Actor:
        user_id = uuid.uuid4()
        name = name or f"u{user_id.hex[:12]}"
        async with domain_db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO users (id, email, username, password_hash, is_active) "
                    "VALUES (:id, :email, :username, 'x', :active)"
                ),
                {"id": user_id, "email": f"{name}@example.com", "username": name, "active": active},
            )
        return Actor(user_id, headers(Role.USER, str(user_id)))

    return create


@pytest.fixture
async def side_cache(redis_url: str) -> AsyncIterator[Cache]:
    """A second cache client on the app's Redis: it sees what the app cached or dropped."""
    async with open_cache(redis_url) as cache:
        yield cache


@pytest.fixture
def read_events(client: AsyncClient, headers: Headers) -> ReadEvents:
    """`await read_events(type, count)`: the envelopes of that type on the stream, oldest
    first, once the relay has moved at least `count` of them there (at most 10 s)."""

    async def read(event_type: str, count: int = 1) -> list[dict[str, Any]]:
        async with asyncio.timeout(10):
            while True:
                response = await client.get(
                    "/events",
                    params={"type": event_type, "limit": 1000},
                    headers=headers(Role.ADMIN),
                )
                assert response.status_code == 200, response.text
                events: list[dict[str, Any]] = response.json()["events"]
                if len(events) >= count:
                    return events
                await asyncio.sleep(0.05)

    return read
