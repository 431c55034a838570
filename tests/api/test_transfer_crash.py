"""kill -9 of a node mid-batch: transfers under load over HTTP, the `azora serve` writing
their batches killed; nothing is half-posted, and every key retried on another node posts
once (the ones that had posted answer the same transaction)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.backup.postgres import ledger_problems
from azora_nexus.config import Settings
from azora_nexus.domain.ledger.models import Currency
from azora_nexus.events.relay import asyncpg_dsn
from tests.domain.ledger.ledger_helpers import open_ledger_db, wallet_factory
from tests.realtime.node_process import NodeProcess
from tests.support.waiting import eventually

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow

WALLETS = 8
CLIENTS = 32
BALANCE = "1000.00"
POSTED_BEFORE_KILL = 150


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    yield connection
    await connection.close()


@pytest.fixture
async def nodes() -> AsyncIterator[list[NodeProcess]]:
    started: list[NodeProcess] = []
    yield started
    await asyncio.gather(*(node.stop() for node in started))


async def funded_wallets(database_url: str, redis_url: str) -> list[str]:
    async with open_ledger_db(database_url, redis_url) as db:
        make = wallet_factory(db)
        return [str(await make(Currency.USD, BALANCE)) for _ in range(WALLETS)]


async def load(
    http: httpx.AsyncClient, url: str, wallets: list[str], sent: dict[str, Any], seed: int
) -> dict[str, str]:
    """Transfer until the node dies; the transaction id each answered key got."""
    rng = random.Random(seed)
    answered: dict[str, str] = {}
    while True:
        source, target = rng.sample(wallets, 2)
        key = str(uuid.uuid4())
        body = {
            "fromWalletId": source,
            "toWalletId": target,
            "amount": str(Decimal(rng.randint(1, 100)) / 100),
            "idempotencyKey": key,
        }
        sent[key] = body
        try:
            response = await http.post(f"{url}/api/wallets/transfer", json=body)
        except httpx.TransportError:
            return answered
        assert response.status_code == 201, response.text
        answered[key] = response.json()["id"]


async def test_a_node_killed_mid_batch_leaves_nothing_half_posted_and_retries_post_once(
    settings: Settings,
    database_url: str,
    redis_url: str,
    nodes: list[NodeProcess],
    conn: asyncpg.Connection,
) -> None:
    wallets = await funded_wallets(database_url, redis_url)
    admin = issue_token(settings.jwt_secret or "", sub="admin", role=Role.ADMIN)
    headers = {"Authorization": f"Bearer {admin}"}
    limits = httpx.Limits(max_connections=CLIENTS)
    node_a = await NodeProcess.start(settings, "a")
    nodes.append(node_a)
    sent: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=30, headers=headers, limits=limits) as http:
        clients = [
            asyncio.create_task(load(http, node_a.url, wallets, sent, seed))
            for seed in range(CLIENTS)
        ]

        async def under_way() -> bool:
            count = await conn.fetchval(
                "SELECT count(*) FROM ledger_transactions WHERE kind = 'transfer'"
            )
            return bool(count >= POSTED_BEFORE_KILL)

        await eventually(under_way, timeout_s=60)
        node_a.kill()
        await node_a.process.wait()
        answered = {k: v for result in await asyncio.gather(*clients) for k, v in result.items()}

        # Cut mid-flight: requests were sent that never got an answer.
        assert len(sent) > len(answered) >= POSTED_BEFORE_KILL
        # Nothing half-posted: every transfer is whole, with its two postings and events.
        assert await ledger_problems(database_url) == []
        assert await half_posted(conn) == 0

        node_b = await NodeProcess.start(settings, "b")
        nodes.append(node_b)
        retried: dict[str, str] = {}
        for key, body in sent.items():
            response = await http.post(f"{node_b.url}/api/wallets/transfer", json=body)
            assert response.status_code == 201, response.text
            retried[key] = response.json()["id"]

    assert {k: retried[k] for k in answered} == answered  # the same transaction, once
    rows = await conn.fetch(
        "SELECT idempotency_key, id::text FROM ledger_transactions WHERE kind = 'transfer'"
    )
    assert dict((row[0], row[1]) for row in rows) == retried  # every key posted, once
    assert await ledger_problems(database_url) == []
    assert await half_posted(conn) == 0
    total = await conn.fetchval(
        "SELECT sum(balance) FROM wallets WHERE id = ANY($1::uuid[])", wallets
    )
    assert total == Decimal(BALANCE) * WALLETS


async def half_posted(conn: asyncpg.Connection) -> int:
    """Transfers without exactly two postings or without exactly their two events."""
    broken = await conn.fetchval(
        """
        SELECT count(*) FROM ledger_transactions AS t
        WHERE t.kind = 'transfer' AND (
            (SELECT count(*) FROM ledger_postings AS p WHERE p.transaction_id = t.id) <> 2
            OR (SELECT count(*) FROM outbox AS o
                WHERE o.type = 'finance.transaction.completed'
                  AND o.payload ->> 'transactionId' = t.id::text) <> 2
        )
        """
    )
    assert isinstance(broken, int)
    return broken
