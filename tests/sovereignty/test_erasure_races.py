"""Erasure while money keeps moving: the ledger stays exact and nothing is left half-done."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from httpx import AsyncClient

from tests.sovereignty.life import ADMIN, Life, Person, wait_archived
from tests.sovereignty.search import search_mongo, search_postgres, search_redis
from tests.sovereignty.test_erasure import assert_ledger_balanced, history
from tests.support.server import Node

WORKERS = 3


async def pay(http: AsyncClient, payer: Person, src: str, dst: str) -> int:
    response = await http.post(
        "/api/wallets/transfer",
        json={
            "fromWalletId": src,
            "toWalletId": dst,
            "amount": "1",
            "idempotencyKey": secrets.token_hex(8),
        },
        headers=payer.headers,
    )
    return response.status_code


async def keep_paying(
    http: AsyncClient, payer: Person, src: str, dst: str, until: asyncio.Event
) -> list[int]:
    """Pay 1 again and again until `until` is set; every answer's status."""
    statuses = []
    while not until.is_set():
        statuses.append(await pay(http, payer, src, dst))
    return statuses


@pytest.mark.slow
async def test_erasure_racing_transfers_both_ways(
    http: AsyncClient, node: Node, life: Life, database_url: str
) -> None:
    alice, bob = life.alice, life.bob
    await wait_archived(node.nexus.documents, alice, 10)
    # Bob keeps paying after Alice stops: enough money that he never runs short on a fast
    # machine (his 40 USD ran out once in about 0.5 s of one-way payments: a 409).
    funded = await http.post(
        "/api/rewards/mining",
        json={"userId": bob.id, "currency": "USD", "amount": "100000"},
        headers=ADMIN,
    )
    assert funded.status_code == 201, funded.text
    done = asyncio.Event()
    payers = [
        *(keep_paying(http, bob, life.bob_wallet, life.alice_wallet, done) for _ in range(WORKERS)),
        *(
            keep_paying(http, alice, life.alice_wallet, life.bob_wallet, done)
            for _ in range(WORKERS)
        ),
    ]
    paying = asyncio.gather(*payers)
    await asyncio.sleep(0.3)  # money is moving both ways
    erased = await http.request("DELETE", f"/api/users/{alice.id}", headers=ADMIN)
    await asyncio.sleep(0.3)  # and keeps moving after
    done.set()
    results = await paying
    by_bob = [s for r in results[:WORKERS] for s in r]
    by_alice = [s for r in results[WORKERS:] for s in r]

    assert erased.status_code == 204, erased.text
    # Bob pays the wallet whoever owns it; Alice's payments go through until she is erased,
    # then her token is refused (401) or the wallet is no longer hers (403).
    assert set(by_bob) == {201}
    assert 201 in by_alice
    assert 401 in by_alice
    assert set(by_alice) <= {201, 401, 403}
    await assert_ledger_balanced(database_url)
    assert len(await history(http, bob, life.bob_wallet)) > 3  # the history still reads

    assert await search_postgres(database_url, alice.needles) == []
    assert await search_mongo(node.nexus.documents.database, alice.needles) == []
    assert await search_redis(node.nexus.redis, alice.needles) == []
