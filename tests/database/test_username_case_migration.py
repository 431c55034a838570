"""Migration 0006: usernames unique whatever their case; existing case-duplicates renamed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from azora_nexus.backends import BackendUrls
from azora_nexus.database.migrate import upgrade
from tests.database.test_migrations import asyncpg_dsn, empty_database

INSERT = (
    "INSERT INTO users (id, email, username, password_hash, created_at)"
    " VALUES ($1, $2, $3, 'x', now() + make_interval(secs => $4))"
)


@pytest.fixture
async def database_at_0005(backends: BackendUrls) -> AsyncIterator[str]:
    async with empty_database(backends.database) as url:
        await upgrade(url, "0005")
        yield url


async def test_the_oldest_keeps_the_name_and_later_case_variants_are_renamed(
    database_at_0005: str,
) -> None:
    ids = [uuid.uuid4() for _ in range(4)]
    names = ["tim_x", "TIM_X", "Tim_X", "other"]
    conn = await asyncpg.connect(asyncpg_dsn(database_at_0005))
    try:
        await conn.execute("INSERT INTO epochs (name, epoch) VALUES ('cache', 'before')")
        for n, (user_id, name) in enumerate(zip(ids, names, strict=True)):
            await conn.execute(INSERT, user_id, f"u{n}@example.com", name, float(n))
        await upgrade(database_at_0005)

        rows = await conn.fetch("SELECT id, username FROM users")
        assert {r["id"]: r["username"] for r in rows} == {
            ids[0]: "tim_x",
            ids[1]: f"TIM_X-{ids[1].hex[:8]}",
            ids[2]: f"Tim_X-{ids[2].hex[:8]}",
            ids[3]: "other",
        }
        # Cached users with the old names are left behind with the old epoch.
        assert await conn.fetchval("SELECT epoch FROM epochs WHERE name = 'cache'") != "before"
        with pytest.raises(asyncpg.UniqueViolationError) as refused:
            await conn.execute(INSERT, uuid.uuid4(), "u9@example.com", "OTHER", 9.0)
        assert refused.value.constraint_name == "uq_users_username_lower"
    finally:
        await conn.close()
