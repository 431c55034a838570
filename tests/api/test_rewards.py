"""`POST /api/rewards/mining` and `POST /api/rewards/ubi`: admin/service credits from pools."""

from __future__ import annotations

import uuid

from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from azora_nexus.cache import keys
from azora_nexus.cache.cache import open_cache
from azora_nexus.database.engine import async_url
from tests.api.account_helpers import (
    ADMIN,
    SERVICE,
    open_wallet,
    register,
    wait_for_events,
    without_id_and_time,
)


async def test_mining_credits_the_wallet_from_the_pool_and_emits_the_reward(
    client: AsyncClient,
) -> None:
    user, headers = await register(client, "ada")
    wallet = await open_wallet(client, headers, "AZR")
    response = await client.post(
        "/api/rewards/mining",
        json={"userId": user["id"], "currency": "AZR", "amount": "1.5"},
        headers=SERVICE,
    )
    assert response.status_code == 201, response.text
    transaction = response.json()
    assert transaction["kind"] == "mining_reward"
    assert transaction["createdBy"] == "payment-service"
    pool_posting, wallet_posting = transaction["postings"]
    assert pool_posting["walletId"] is None
    assert pool_posting["amount"] == "-1.500000000000000000"
    assert wallet_posting == {
        "walletId": wallet["id"],
        "systemAccountId": None,
        "currency": "AZR",
        "amount": "1.500000000000000000",
    }
    balance = (await client.get(f"/api/wallets/{wallet['id']}", headers=headers)).json()
    assert balance["balance"] == "1.500000000000000000"
    [event] = await wait_for_events(client, "finance.mining.reward", 1)
    assert without_id_and_time(event) == {
        "type": "finance.mining.reward",
        "payload": {
            "transactionId": transaction["id"],
            "walletId": wallet["id"],
            "amount": "1.500000000000000000",
            "currency": "AZR",
        },
        "source": "rewards",
        "userId": user["id"],
    }


async def test_mining_opens_a_missing_wallet_and_replays_a_given_key(client: AsyncClient) -> None:
    user, headers = await register(client, "ada")
    body = {"userId": user["id"], "currency": "BTC", "amount": "0.00000001", "idempotencyKey": "m1"}
    first = await client.post("/api/rewards/mining", json=body, headers=ADMIN)
    second = await client.post("/api/rewards/mining", json=body, headers=ADMIN)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    [wallet] = (await client.get("/api/wallets", headers=headers)).json()["items"]
    assert (wallet["currency"], wallet["balance"]) == ("BTC", "0.00000001")
    [created] = await wait_for_events(client, "finance.wallet.created", 1)
    assert created["userId"] == user["id"]
    await wait_for_events(client, "finance.mining.reward", 1)


async def test_mining_refusals(client: AsyncClient) -> None:
    user, headers = await register(client, "ada")
    ok = {"userId": user["id"], "currency": "USD", "amount": "1"}
    as_user = await client.post("/api/rewards/mining", json=ok, headers=headers)
    assert as_user.status_code == 403
    unknown = {**ok, "userId": str(uuid.uuid4())}
    assert (
        await client.post("/api/rewards/mining", json=unknown, headers=ADMIN)
    ).status_code == 404
    too_fine = {**ok, "amount": "0.001"}
    assert (
        await client.post("/api/rewards/mining", json=too_fine, headers=ADMIN)
    ).status_code == 422
    assert (await client.post("/api/rewards/mining", json=ok)).status_code == 401


async def deactivate(database_url: str, user_id: str) -> None:
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE users SET is_active = false WHERE id = :id"), {"id": user_id}
            )
    finally:
        await engine.dispose()


async def test_ubi_pays_every_active_user_once_per_key(
    client: AsyncClient, database_url: str
) -> None:
    users = [await register(client, name) for name in ("ada", "bob", "cyd")]
    await open_wallet(client, users[0][1], "USD")
    gone, _ = await register(client, "gone")
    await deactivate(database_url, gone["id"])
    body = {"currency": "USD", "amountPerUser": "2.50", "idempotencyKey": "ubi-2026-11"}
    first = await client.post("/api/rewards/ubi", json=body, headers=ADMIN)
    assert first.status_code == 200, first.text
    assert first.json() == {"currency": "USD", "amountPerUser": "2.50", "paid": 3, "alreadyPaid": 0}
    again = await client.post("/api/rewards/ubi", json=body, headers=ADMIN)
    assert again.json() == {"currency": "USD", "amountPerUser": "2.50", "paid": 0, "alreadyPaid": 3}
    for _, headers in users:
        [wallet] = (await client.get("/api/wallets", headers=headers)).json()["items"]
        assert wallet["balance"] == "2.50"
    events = await wait_for_events(client, "finance.ubi.distributed", 3)
    by_user = {e["userId"]: without_id_and_time(e) for e in events}
    assert set(by_user) == {user["id"] for user, _ in users}
    for user, headers in users:
        [wallet] = (await client.get("/api/wallets", headers=headers)).json()["items"]
        payload = by_user[user["id"]]["payload"]
        assert by_user[user["id"]] == {
            "type": "finance.ubi.distributed",
            "payload": {
                "transactionId": payload["transactionId"],
                "walletId": wallet["id"],
                "amount": "2.50",
                "currency": "USD",
                "distribution": "ubi-2026-11",
            },
            "source": "rewards",
            "userId": user["id"],
        }
    # Two wallets were opened by the distribution (ada had one), each announced.
    await wait_for_events(client, "finance.wallet.created", 3)


async def test_ubi_refusals(client: AsyncClient) -> None:
    _, headers = await register(client, "ada")
    body = {"currency": "USD", "amountPerUser": "1", "idempotencyKey": "u1"}
    assert (await client.post("/api/rewards/ubi", json=body, headers=headers)).status_code == 403
    assert (await client.post("/api/rewards/ubi", json=body, headers=ADMIN)).status_code == 200
    other_amount = {**body, "amountPerUser": "2"}
    reused = await client.post("/api/rewards/ubi", json=other_amount, headers=ADMIN)
    assert reused.status_code == 409
    too_fine = {**body, "amountPerUser": "0.001", "idempotencyKey": "u2"}
    assert (await client.post("/api/rewards/ubi", json=too_fine, headers=ADMIN)).status_code == 422


async def test_a_credit_past_the_largest_balance_is_refused_not_a_crash(
    client: AsyncClient,
) -> None:
    user, headers = await register(client, "ada")
    body = {"userId": user["id"], "currency": "USD", "amount": "99999999999999999999"}
    assert (await client.post("/api/rewards/mining", json=body, headers=ADMIN)).status_code == 201
    again = await client.post("/api/rewards/mining", json=body, headers=ADMIN)
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "invalid"
    [wallet] = (await client.get("/api/wallets", headers=headers)).json()["items"]
    assert wallet["balance"] == "99999999999999999999.00"


async def test_rewards_invalidate_the_credited_wallets_cached_entries(
    client: AsyncClient, redis_url: str, redis: Redis
) -> None:
    user, headers = await register(client, "ada")
    wallet = await open_wallet(client, headers, "USD")
    cached = [keys.wallet(wallet["id"]), keys.user_wallets(user["id"])]

    async def stale() -> dict[str, bool]:
        return {"stale": True}

    async with open_cache(redis_url) as cache:
        for reward in (
            ("/api/rewards/mining", {"userId": user["id"], "currency": "USD", "amount": "1"}),
            ("/api/rewards/ubi", {"currency": "USD", "amountPerUser": "1", "idempotencyKey": "u"}),
        ):
            for key in cached:
                await cache.read_through(key, stale)
            assert len([k async for k in redis.scan_iter(match="*:v:*wallet*")]) == 2
            response = await client.post(reward[0], json=reward[1], headers=ADMIN)
            assert response.is_success, response.text
            assert [k async for k in redis.scan_iter(match="*:v:*wallet*")] == []
