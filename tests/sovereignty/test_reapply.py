"""After a restore from a backup older than an erasure, the erasure is applied again."""

from __future__ import annotations

import asyncpg
from httpx import AsyncClient

from azora_nexus.domain.privacy.erasure import reapply_erasures
from azora_nexus.domain.privacy.traces import TraceStores
from azora_nexus.events.relay import asyncpg_dsn
from tests.sovereignty.life import ADMIN, Life
from tests.sovereignty.search import search_mongo, search_postgres
from tests.support.server import Node


async def test_a_restored_user_is_erased_again(
    http: AsyncClient, node: Node, life: Life, database_url: str
) -> None:
    alice = life.alice
    assert (
        await http.request("DELETE", f"/api/users/{alice.id}", headers=ADMIN)
    ).status_code == 204
    # What a restore from an older backup brings back: her row and an archived event.
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            "INSERT INTO users (id, email, username, password_hash) VALUES ($1, $2, $3, 'x')",
            alice.id,
            alice.email,
            alice.username,
        )
        await conn.execute("INSERT INTO profiles (user_id, bio) VALUES ($1, 'restored')", alice.id)
    finally:
        await conn.close()
    await node.nexus.documents.events.insert_one(
        {
            "_id": "1-0",
            "ms": 1,
            "seq": 0,
            "type": "system.user.login",
            "source": "users",
            "timestamp": 1,
            "payload": {"username": alice.username},
            "userId": alice.id,
        }
    )
    assert await search_postgres(database_url, alice.needles)

    stores = TraceStores(
        db=node.nexus.db,
        redis=node.nexus.redis,
        documents=node.nexus.documents,
        cache_prefix=node.nexus.cache.options.prefix,
        subject_key=node.nexus.subject_key,
    )
    assert await reapply_erasures(stores) == 1

    assert await search_postgres(database_url, alice.needles) == []
    assert await search_mongo(node.nexus.documents.database, alice.needles) == []
    bob = await http.get(f"/api/users/{life.bob.id}", headers=life.bob.headers)
    assert bob.status_code == 200
    assert await reapply_erasures(stores) == 0
