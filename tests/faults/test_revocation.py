"""The erased-token check needs no Redis: every node holds the erased users in memory,
told by NOTIFY at once and by a 1 s poll at the latest."""

from __future__ import annotations

import time

import asyncpg
from httpx import AsyncClient

from azora_nexus.domain.privacy.identity import subject_hash
from azora_nexus.domain.privacy.revocation import POLL_S
from azora_nexus.events.relay import asyncpg_dsn
from tests.faults.fault_helpers import TIMEOUT_S, OwnBackends
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
