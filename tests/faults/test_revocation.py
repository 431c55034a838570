"""The erased-token check needs no Redis: every node holds the erased users in memory,
told by NOTIFY at once and by a 1 s poll at the latest."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from httpx import AsyncClient
from pymongo import AsyncMongoClient

from azora_nexus.cache.client import create_redis
from azora_nexus.domain.privacy.identity import subject_hash, subject_hmac, subject_key
from azora_nexus.domain.privacy.revocation import ERASED_KEY, POLL_S
from azora_nexus.events.relay import asyncpg_dsn
from tests.faults.fault_helpers import JWT_SECRET, TIMEOUT_S, OwnBackends
from tests.faults.test_fail_fast import ADMIN, register
from tests.faults.test_stale_reads import nexus_node


async def signed_in(client: AsyncClient) -> tuple[str, dict[str, str]]:
    registered = (await register(client)).json()
    return registered["user"]["id"], {"Authorization": f"Bearer {registered['token']}"}


async def refused_within(
    client: AsyncClient, path: str, headers: dict[str, str], s: float
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < s:
        if (await client.get(path, headers=headers)).status_code == 401:
            return time.monotonic() - started
    raise AssertionError(f"the token was still accepted after {s} s")


async def test_an_erasure_reaches_another_node_at_once(own_backends: OwnBackends) -> None:
    async with nexus_node(own_backends) as node_a, nexus_node(own_backends) as node_b:
        user_id, headers = await signed_in(node_a)
        path = f"/api/users/{user_id}"
        assert (await node_b.get(path, headers=headers)).status_code == 200
        erased = await node_a.request("DELETE", path, headers=ADMIN)
        assert erased.status_code == 204
        assert (await node_a.get(path, headers=headers)).status_code == 401
        assert await refused_within(node_b, path, headers, POLL_S + 1) < POLL_S + 1


async def test_a_lost_notification_is_made_up_by_the_poll(own_backends: OwnBackends) -> None:
    async with nexus_node(own_backends) as node:
        user_id, headers = await signed_in(node)
        conn = await asyncpg.connect(asyncpg_dsn(own_backends.urls["postgres"]))
        try:  # recorded without a NOTIFY, as if the notification were lost
            await conn.execute(
                "INSERT INTO erased_users (subject_sha256) VALUES ($1)", subject_hash(user_id)
            )
        finally:
            await conn.close()
        took = await refused_within(node, f"/api/users/{user_id}", headers, POLL_S + 1)
        assert took <= POLL_S + 0.5


async def test_erased_tokens_stay_refused_while_redis_is_frozen(own_backends: OwnBackends) -> None:
    async with nexus_node(own_backends) as node:
        user_id, headers = await signed_in(node)
        other_id, other_headers = await signed_in(node)
        assert (
            await node.request("DELETE", f"/api/users/{user_id}", headers=ADMIN)
        ).status_code == 204
        with own_backends.frozen("redis"):
            started = time.monotonic()
            refused = await node.get(f"/api/users/{user_id}", headers=headers)
            assert refused.status_code == 401
            accepted = await node.get(f"/api/users/{other_id}", headers=other_headers)
            assert accepted.status_code == 200  # from PostgreSQL: the cache's breaker
            assert time.monotonic() - started < 2 * TIMEOUT_S


async def test_a_restore_to_before_an_erasure_keeps_it(own_backends: OwnBackends) -> None:
    async with nexus_node(own_backends) as node:
        registered = (await register(node)).json()
        user = registered["user"]
        headers = {"Authorization": f"Bearer {registered['token']}"}
        path = f"/api/users/{user['id']}"
        assert (await node.request("DELETE", path, headers=ADMIN)).status_code == 204
        mongo = AsyncMongoClient[dict[str, object]](own_backends.urls["mongo"])
        try:  # the archive holds the erasure's announcement
            events = mongo.get_default_database("azora")["events"]
            query = {
                "type": "system.user.erased",
                "payload.subjectHmac": subject_hmac(subject_key(None, JWT_SECRET), user["id"]),
            }
            started = time.monotonic()
            while await events.count_documents(query) == 0:
                assert time.monotonic() - started < 20, "the erasure never reached the archive"
                await asyncio.sleep(0.2)
        finally:
            await mongo.close()
    # What a restore to a moment before the erasure leaves: the user's row, no record of it.
    conn = await asyncpg.connect(asyncpg_dsn(own_backends.urls["postgres"]))
    try:
        await conn.execute(
            "INSERT INTO users (id, email, username, password_hash) VALUES ($1, $2, $3, 'x')",
            user["id"],
            user["email"],
            user["username"],
        )
        await conn.execute(
            "DELETE FROM erased_users WHERE subject_sha256 = $1", subject_hash(user["id"])
        )
    finally:
        await conn.close()
    raw = create_redis(own_backends.urls["redis"])
    try:
        await raw.srem(ERASED_KEY, subject_hash(user["id"]))  # nor in the legacy set
    finally:
        await raw.aclose()
    async with nexus_node(own_backends) as restarted:
        assert await refused_within(restarted, path, headers, 15) < 15
        started = time.monotonic()  # the token is refused first, then the rows go
        while (await restarted.get(path, headers=ADMIN)).status_code != 404:
            assert time.monotonic() - started < 15, "the user was not erased again"
            await asyncio.sleep(0.2)
