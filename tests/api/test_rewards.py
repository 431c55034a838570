"""`/api/rewards`: mining credits, and UBI distributions run as jobs (admin/service)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

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


async def wait_finished(client: AsyncClient, distribution_id: str) -> dict[str, Any]:
    """The distribution once its job has ended (the payout worker runs beside the API)."""
    deadline = time.monotonic() + 20
    while True:
        response = await client.get(f"/api/rewards/distributions/{distribution_id}", headers=ADMIN)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] != "running" or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.05)


async def test_ubi_pays_every_active_user_once_per_key(
    client: AsyncClient, database_url: str
) -> None:
    users = [await register(client, name) for name in ("ada", "bob", "cyd")]
    await open_wallet(client, users[0][1], "USD")
    gone, _ = await register(client, "gone")
    await deactivate(database_url, gone["id"])
    body = {"currency": "USD", "amountPerUser": "2.50", "idempotencyKey": "ubi-2026-11"}
    first = await client.post("/api/rewards/ubi", json=body, headers=ADMIN)
    assert first.status_code == 202, first.text
    started = first.json()
    assert started["status"] in ("running", "completed")
    assert (started["idempotencyKey"], started["totalUsers"]) == ("ubi-2026-11", 3)
    done = await wait_finished(client, started["id"])
    assert {k: done[k] for k in ("status", "paid", "alreadyPaid", "progress", "error")} == {
        "status": "completed",
        "paid": 3,
        "alreadyPaid": 0,
        "progress": 1.0,
        "error": None,
    }
    assert (done["currency"], done["amountPerUser"], done["createdBy"]) == ("USD", "2.50", "admin")
    # The same key and request again: the same distribution, nobody paid again.
    again = await client.post("/api/rewards/ubi", json=body, headers=ADMIN)
    assert again.status_code == 202, again.text
    assert again.json() == done
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
        history = await client.get(f"/api/wallets/{wallet['id']}/transactions", headers=headers)
        assert history.status_code == 200, history.text
        [entry] = history.json()["items"]
        assert (entry["transactionId"], entry["kind"], entry["amount"]) == (
            payload["transactionId"],
            "ubi",
            "2.50",
        )
    # Two wallets were opened by the distribution (ada had one), each announced.
    await wait_for_events(client, "finance.wallet.created", 3)
    [completed] = await wait_for_events(client, "finance.ubi.completed", 1)
    assert without_id_and_time(completed) == {
        "type": "finance.ubi.completed",
        "payload": {
            "distributionId": started["id"],
            "distribution": "ubi-2026-11",
            "currency": "USD",
            "amountPerUser": "2.50",
            "totalUsers": 3,
            "paid": 3,
            "alreadyPaid": 0,
        },
        "source": "rewards",
    }


async def test_ubi_refusals(client: AsyncClient) -> None:
    _, headers = await register(client, "ada")
    body = {"currency": "USD", "amountPerUser": "1", "idempotencyKey": "u1"}
    assert (await client.post("/api/rewards/ubi", json=body, headers=headers)).status_code == 403
    started = await client.post("/api/rewards/ubi", json=body, headers=ADMIN)
    assert started.status_code == 202
    other_amount = {**body, "amountPerUser": "2"}
    reused = await client.post("/api/rewards/ubi", json=other_amount, headers=ADMIN)
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "conflict"
    other_currency = {**body, "currency": "AZR"}
    assert (
        await client.post("/api/rewards/ubi", json=other_currency, headers=ADMIN)
    ).status_code == 409
    too_fine = {**body, "amountPerUser": "0.001", "idempotencyKey": "u2"}
    assert (await client.post("/api/rewards/ubi", json=too_fine, headers=ADMIN)).status_code == 422
    path = f"/api/rewards/distributions/{started.json()['id']}"
    assert (await client.get(path, headers=headers)).status_code == 403
    assert (await client.get(path)).status_code == 401
    unknown = await client.get(f"/api/rewards/distributions/{uuid.uuid4()}", headers=ADMIN)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    assert (await wait_finished(client, started.json()["id"]))["paid"] == 1


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
            if response.status_code == 202:  # a distribution: invalidated as it pays
                assert (await wait_finished(client, response.json()["id"]))["paid"] == 1
            assert [k async for k in redis.scan_iter(match="*:v:*wallet*")] == []
