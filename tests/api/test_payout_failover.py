"""A UBI distribution survives its node's death: kill -9 of the `azora serve` paying it
mid-job, another node resumes from the job's cursor, and nobody is paid twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.backup.postgres import ledger_problems
from azora_nexus.config import Settings
from azora_nexus.events.relay import asyncpg_dsn
from tests.realtime.node_process import NodeProcess
from tests.support.waiting import eventually

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow

USERS = 1500
INACTIVE = 11
BODY = {"currency": "AZR", "amountPerUser": "0.5", "idempotencyKey": "ubi-failover"}


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    yield connection
    await connection.close()


@pytest.fixture
async def nodes(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Any]]:
    # Small batches so the job takes a while; a short lease so the takeover is quick.
    monkeypatch.setenv("AZORA_PAYOUT_BATCH_SIZE", "10")
    monkeypatch.setenv("AZORA_PAYOUT_LEASE_S", "2")
    started: list[NodeProcess] = []
    yield started
    await asyncio.gather(*(node.stop() for node in started))


async def status(http: httpx.AsyncClient, url: str, distribution_id: str) -> dict[str, Any]:
    response = await http.get(f"{url}/api/rewards/distributions/{distribution_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def test_a_node_killed_mid_distribution_is_taken_over_and_nobody_is_paid_twice(
    settings: Settings, nodes: list[NodeProcess], conn: asyncpg.Connection, database_url: str
) -> None:
    await conn.execute(
        "INSERT INTO users (id, email, username, password_hash, is_active) "
        "SELECT id, id::text || '@example.com', id::text, 'x', n > $2 "
        "FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)",
        [uuid.uuid4() for _ in range(USERS + INACTIVE)],
        INACTIVE,
    )
    admin = issue_token(settings.jwt_secret or "", sub="admin", role=Role.ADMIN)
    node_a = await NodeProcess.start(settings, "a")
    nodes.append(node_a)
    async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {admin}"}) as http:
        started = await http.post(f"{node_a.url}/api/rewards/ubi", json=BODY)
        assert started.status_code == 202, started.text
        job_id = started.json()["id"]

        async def under_way() -> bool:
            return int((await status(http, node_a.url, job_id))["paid"]) >= 100

        await eventually(under_way, timeout_s=30)
        node_a.kill()
        await node_a.process.wait()
        cut = await conn.fetchrow(
            "SELECT status, paid, already_paid, claimed_by FROM distributions WHERE id = $1",
            uuid.UUID(job_id),
        )
        assert cut is not None
        assert cut["status"] == "running", "the job ended before the kill: nothing proven"
        assert 100 <= cut["paid"] < USERS
        assert cut["claimed_by"] is not None  # held by the dead node until its lease runs out

        node_b = await NodeProcess.start(settings, "b")
        nodes.append(node_b)

        async def finished() -> bool:
            return bool((await status(http, node_b.url, job_id))["status"] != "running")

        await eventually(finished, timeout_s=60, every_s=0.2)
        done = await status(http, node_b.url, job_id)
        # The counts moved with the batches that committed: exact, nobody counted twice.
        assert (done["status"], done["paid"], done["alreadyPaid"], done["totalUsers"]) == (
            "completed",
            USERS,
            0,
            USERS,
        )
        replay = await http.post(f"{node_b.url}/api/rewards/ubi", json=BODY)
        assert (replay.status_code, replay.json()) == (202, done)

    credits = await conn.fetch(
        """
        SELECT u.is_active, count(p.id) AS credits, coalesce(sum(p.amount), 0) AS total,
               max(w.balance) AS balance
        FROM users u
        LEFT JOIN wallets w ON w.user_id = u.id AND w.currency = 'AZR'
        LEFT JOIN ledger_postings p ON p.wallet_id = w.id
        GROUP BY u.id, u.is_active
        """
    )
    active = [row for row in credits if row["is_active"]]
    assert len(active) == USERS
    assert all(row["credits"] == 1 and row["balance"] == row["total"] == 0.5 for row in active)
    assert all(row["credits"] == 0 for row in credits if not row["is_active"])
    assert await ledger_problems(database_url) == []
    outbox = dict(
        await conn.fetch(
            "SELECT type, count(*) FROM outbox WHERE type LIKE 'finance.%' GROUP BY type"
        )
    )
    assert outbox["finance.ubi.distributed"] == USERS
    assert outbox["finance.wallet.created"] == USERS
    assert outbox["finance.ubi.completed"] == 1
    assert outbox.get("finance.ubi.progress", 0) >= 1
