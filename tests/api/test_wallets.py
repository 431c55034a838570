"""`/api/wallets`: open, list, read, transfer (idempotent, refusals), history, events, cache."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient
from redis.asyncio import Redis

from azora_nexus.cache import keys
from azora_nexus.cache.cache import open_cache
from tests.api.account_helpers import (
    ADMIN,
    mine,
    open_wallet,
    register,
    wait_for_events,
    without_id_and_time,
)


def transfer_body(
    source: dict[str, Any], target: dict[str, Any], amount: str, key: str = "t-1", **extra: Any
) -> dict[str, Any]:
    return {
        "fromWalletId": source["id"],
        "toWalletId": target["id"],
        "amount": amount,
        "idempotencyKey": key,
        **extra,
    }


async def test_open_wallet_answers_it_empty_and_emits_wallet_created(client: AsyncClient) -> None:
    user, headers = await register(client, "ada")
    wallet = await open_wallet(client, headers, "BTC")
    created_at = wallet.pop("createdAt")
    assert isinstance(created_at, str)
    assert wallet == {
        "id": wallet["id"],
        "userId": user["id"],
        "currency": "BTC",
        "balance": "0.00000000",
    }
    [event] = await wait_for_events(client, "finance.wallet.created", 1)
    assert without_id_and_time(event) == {
        "type": "finance.wallet.created",
        "payload": {"walletId": wallet["id"], "currency": "BTC"},
        "source": "wallets",
        "userId": user["id"],
    }


async def test_one_wallet_per_currency(client: AsyncClient) -> None:
    _, headers = await register(client, "ada")
    await open_wallet(client, headers, "USD")
    again = await client.post("/api/wallets", json={"currency": "USD"}, headers=headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate"
    unknown = await client.post("/api/wallets", json={"currency": "DOGE"}, headers=headers)
    assert unknown.status_code == 422
    as_service = await client.post("/api/wallets", json={"currency": "USD"}, headers=ADMIN)
    assert as_service.status_code == 403


async def test_list_and_get_show_only_the_callers_wallets(client: AsyncClient) -> None:
    _, headers = await register(client, "ada")
    _, other = await register(client, "bob")
    usd = await open_wallet(client, headers, "USD")
    eth = await open_wallet(client, headers, "ETH")
    await open_wallet(client, other, "USD")
    listed = await client.get("/api/wallets", headers=headers)
    assert listed.json() == {"items": [usd, eth], "next": None}
    first_page = (await client.get("/api/wallets?limit=1", headers=headers)).json()
    assert first_page["items"] == [usd]
    rest = await client.get(f"/api/wallets?limit=1&after={first_page['next']}", headers=headers)
    assert rest.json() == {"items": [eth], "next": None}
    assert (await client.get(f"/api/wallets/{usd['id']}", headers=headers)).json() == usd
    assert (await client.get(f"/api/wallets/{usd['id']}", headers=ADMIN)).json() == usd
    assert (await client.get(f"/api/wallets/{usd['id']}", headers=other)).status_code == 403
    assert (await client.get(f"/api/wallets/{uuid.uuid4()}", headers=other)).status_code == 404


async def test_transfer_moves_money_and_tells_both_parties(client: AsyncClient) -> None:
    ada, ada_headers = await register(client, "ada")
    bob, bob_headers = await register(client, "bob")
    source = await open_wallet(client, ada_headers)
    target = await open_wallet(client, bob_headers)
    await mine(client, ada["id"], "100.00")
    response = await client.post(
        "/api/wallets/transfer",
        json=transfer_body(source, target, "12.5", memo="lunch"),
        headers=ada_headers,
    )
    assert response.status_code == 201, response.text
    transaction = response.json()
    assert transaction == {
        "id": transaction["id"],
        "kind": "transfer",
        "idempotencyKey": "t-1",
        "memo": "lunch",
        "createdBy": ada["id"],
        "createdAt": transaction["createdAt"],
        "postings": [
            {
                "walletId": source["id"],
                "systemAccountId": None,
                "currency": "USD",
                "amount": "-12.50",
            },
            {
                "walletId": target["id"],
                "systemAccountId": None,
                "currency": "USD",
                "amount": "12.50",
            },
        ],
    }
    balance = await client.get(f"/api/wallets/{source['id']}", headers=ada_headers)
    assert balance.json()["balance"] == "87.50"
    events = await wait_for_events(client, "finance.transaction.completed", 2)
    payload = {
        "transactionId": transaction["id"],
        "fromWalletId": source["id"],
        "toWalletId": target["id"],
        "amount": "12.50",
        "currency": "USD",
        "memo": "lunch",
    }
    assert sorted((without_id_and_time(e) for e in events), key=lambda e: e["userId"]) == sorted(
        (
            {
                "type": "finance.transaction.completed",
                "payload": payload,
                "source": "wallets",
                "userId": user_id,
            }
            for user_id in (ada["id"], bob["id"])
        ),
        key=lambda e: e["userId"],
    )
    assert (await client.get(f"/api/wallets/{target['id']}", headers=bob_headers)).json()[
        "balance"
    ] == "12.50"


async def test_the_same_key_and_body_twice_gives_one_transaction(client: AsyncClient) -> None:
    ada, headers = await register(client, "ada")
    _, bob_headers = await register(client, "bob")
    source, target = await open_wallet(client, headers), await open_wallet(client, bob_headers)
    await mine(client, ada["id"], "10")
    body = transfer_body(source, target, "10")
    first = await client.post("/api/wallets/transfer", json=body, headers=headers)
    second = await client.post("/api/wallets/transfer", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert (await client.get(f"/api/wallets/{source['id']}", headers=headers)).json()[
        "balance"
    ] == "0.00"
    other_body = await client.post(
        "/api/wallets/transfer", json={**body, "amount": "1"}, headers=headers
    )
    assert other_body.status_code == 409
    assert other_body.json()["error"]["code"] == "conflict"
    await wait_for_events(client, "finance.transaction.completed", 2)


async def test_transfer_refusals(client: AsyncClient) -> None:
    ada, headers = await register(client, "ada")
    _, bob_headers = await register(client, "bob")
    source = await open_wallet(client, headers)
    btc = await open_wallet(client, headers, "BTC")
    target = await open_wallet(client, bob_headers)
    await mine(client, ada["id"], "5")
    cases: list[tuple[dict[str, Any], dict[str, str], int, str]] = [
        (transfer_body(source, target, "5.01", "a"), headers, 409, "insufficient_funds"),
        (transfer_body(source, btc, "1", "b"), headers, 409, "currency_mismatch"),
        (transfer_body(source, target, "1.001", "c"), headers, 422, "invalid"),
        (transfer_body(source, target, "0", "d"), headers, 422, "invalid"),
        (transfer_body(source, target, "-1", "e"), headers, 422, "invalid"),
        (transfer_body(source, source, "1", "f"), headers, 422, "invalid"),
        (transfer_body(source, target, "1", "g"), bob_headers, 403, "forbidden"),
        (transfer_body(source, {"id": str(uuid.uuid4())}, "1", "h"), headers, 404, "not_found"),
    ]
    for body, caller, status, code in cases:
        response = await client.post("/api/wallets/transfer", json=body, headers=caller)
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), body
    assert (await client.get(f"/api/wallets/{source['id']}", headers=headers)).json()[
        "balance"
    ] == "5.00"


async def test_an_admin_may_move_anyones_money(client: AsyncClient) -> None:
    ada, headers = await register(client, "ada")
    _, bob_headers = await register(client, "bob")
    source, target = await open_wallet(client, headers), await open_wallet(client, bob_headers)
    await mine(client, ada["id"], "3")
    response = await client.post(
        "/api/wallets/transfer", json=transfer_body(source, target, "3"), headers=ADMIN
    )
    assert response.status_code == 201
    assert response.json()["createdBy"] == "admin"


async def test_history_is_newest_first_and_paged(client: AsyncClient) -> None:
    ada, headers = await register(client, "ada")
    _, bob_headers = await register(client, "bob")
    source, target = await open_wallet(client, headers), await open_wallet(client, bob_headers)
    mined = await mine(client, ada["id"], "10")
    for n in range(3):
        body = transfer_body(source, target, f"{n + 1}", f"h-{n}", memo=f"m{n}")
        assert (await client.post("/api/wallets/transfer", json=body, headers=headers)).is_success
    path = f"/api/wallets/{source['id']}/transactions"
    page = (await client.get(f"{path}?limit=2", headers=headers)).json()
    assert [(e["amount"], e["memo"], e["kind"]) for e in page["items"]] == [
        ("-3.00", "m2", "transfer"),
        ("-2.00", "m1", "transfer"),
    ]
    rest = (await client.get(f"{path}?limit=2&after={page['next']}", headers=headers)).json()
    assert [(e["amount"], e["kind"]) for e in rest["items"]] == [
        ("-1.00", "transfer"),
        ("10.00", "mining_reward"),
    ]
    assert rest["items"][-1]["transactionId"] == mined["id"]
    assert rest["next"] is None
    assert (await client.get(path, headers=bob_headers)).status_code == 403
    assert (await client.get(f"{path}?after=bogus", headers=headers)).status_code == 422


async def test_transfer_invalidates_both_wallets_cached_entries(
    client: AsyncClient, redis_url: str, redis: Redis
) -> None:
    ada, headers = await register(client, "ada")
    bob, bob_headers = await register(client, "bob")
    source, target = await open_wallet(client, headers), await open_wallet(client, bob_headers)
    await mine(client, ada["id"], "10")
    cached = [
        keys.wallet(source["id"]),
        keys.wallet(target["id"]),
        keys.user_wallets(ada["id"]),
        keys.user_wallets(bob["id"]),
    ]
    async with open_cache(redis_url) as cache:
        for key in cached:
            assert await cache.read_through(key, _stale) == {"stale": True}
        assert await _cached_count(redis, cached) == 4
        body = transfer_body(source, target, "1")
        assert (await client.post("/api/wallets/transfer", json=body, headers=headers)).is_success
        assert await _cached_count(redis, cached) == 0


async def _stale() -> dict[str, bool]:
    return {"stale": True}


async def _cached_count(redis: Redis, cached: list[keys.CacheKey]) -> int:
    found = 0
    for key in cached:
        found += len([k async for k in redis.scan_iter(match=f"*:v:{key}")])
    return found


async def test_a_memo_that_cannot_be_stored_is_refused(client: AsyncClient) -> None:
    ada, headers = await register(client, "ada")
    _, bob_headers = await register(client, "bob")
    source, target = await open_wallet(client, headers), await open_wallet(client, bob_headers)
    await mine(client, ada["id"], "1")
    body = (
        f'{{"fromWalletId": "{source["id"]}", "toWalletId": "{target["id"]}", '
        '"amount": "1", "idempotencyKey": "k", "memo": "bad \\ud800"}'
    )
    response = await client.post(
        "/api/wallets/transfer",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
