"""Erasing oneself touches only one's own data: a user whose name is a word others use
("finance", "march") erases nothing and rewrites nothing of anyone else's, in the outbox,
the stream or the archive. Erasure finds other people's records by id, never by text."""

from __future__ import annotations

import asyncio
from typing import Any

from httpx import AsyncClient

from azora_nexus.documents.client import Documents
from tests.sovereignty.life import ADMIN, Person, ok
from tests.support.server import Node


async def register(http: AsyncClient, username: str) -> Person:
    email, password = f"{username.lower()}@example.com", f"{username}-pass-phrase"
    body = await ok(
        await http.post(
            "/api/auth/register",
            json={"email": email, "username": username, "password": password},
        ),
        201,
    )
    return Person(body["user"]["id"], email, username, password, body["token"])


async def usd_wallet(http: AsyncClient, person: Person) -> str:
    body = await ok(
        await http.post("/api/wallets", json={"currency": "USD"}, headers=person.headers), 201
    )
    return str(body["id"])


async def all_events(http: AsyncClient) -> list[dict[str, Any]]:
    body = await ok(await http.get("/events", params={"limit": 1000}, headers=ADMIN))
    return list(body["events"])


async def archived(documents: Documents) -> dict[str, dict[str, Any]]:
    return {d["_id"]: d async for d in documents.events.find({})}


async def settled(http: AsyncClient, documents: Documents) -> list[dict[str, Any]]:
    """Every event so far, once the archive holds all of them."""
    async with asyncio.timeout(15):
        while True:
            events = await all_events(http)
            if await documents.events.count_documents({}) >= len(events):
                return events
            await asyncio.sleep(0.05)


async def test_a_user_named_like_a_word_erases_nothing_of_anyone_else(
    http: AsyncClient, node: Node
) -> None:
    victim, bob = await register(http, "tim_x"), await register(http, "bob_y")
    victim_wallet, bob_wallet = await usd_wallet(http, victim), await usd_wallet(http, bob)
    await ok(
        await http.post(
            "/api/rewards/mining",
            json={"userId": victim.id, "currency": "USD", "amount": "100"},
            headers=ADMIN,
        ),
        201,
    )
    await ok(
        await http.post(
            "/api/wallets/transfer",
            json={
                "fromWalletId": victim_wallet,
                "toWalletId": bob_wallet,
                "amount": "5",
                "idempotencyKey": "finance-march",
                "memo": "finance for march",
            },
            headers=victim.headers,
        ),
        201,
    )
    await ok(
        await http.post(
            "/api/jobs",
            json={
                "title": "finance audit for march",
                "description": "finance",
                "budget": "10",
                "currency": "USD",
            },
            headers=victim.headers,
        ),
        201,
    )
    attackers = [await register(http, "finance"), await register(http, "march")]
    for attacker in attackers:
        await usd_wallet(http, attacker)
    documents = node.nexus.documents
    before = await settled(http, documents)
    archive_before = await archived(documents)
    victim_history = await ok(
        await http.get(f"/api/wallets/{victim_wallet}/transactions", headers=victim.headers)
    )

    for attacker in attackers:
        response = await http.request(
            "DELETE",
            f"/api/users/{attacker.id}",
            json={"password": attacker.password},
            headers=attacker.headers,
        )
        assert response.status_code == 204, response.text

    theirs = {a.id for a in attackers}
    expected = [e for e in before if e.get("userId") not in theirs]
    assert any(e["type"].startswith("finance.") for e in expected)
    after = [e for e in await all_events(http) if e["type"] != "system.user.erased"]
    assert after == expected
    archive_after = await archived(documents)
    assert {i: d for i, d in archive_after.items() if d["type"] != "system.user.erased"} == {
        i: d for i, d in archive_before.items() if d.get("userId") not in theirs
    }
    assert (
        await ok(
            await http.get(f"/api/wallets/{victim_wallet}/transactions", headers=victim.headers)
        )
        == victim_history
    )
    [job] = (await ok(await http.get("/api/jobs", headers=bob.headers)))["items"]
    assert (job["title"], job["description"]) == ("finance audit for march", "finance")
