"""Idempotency keys belong to whoever sent them (issue 15, item 11): a key one user used
does not answer 409 to another, nor does a user's key take one Nexus makes for itself."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.api.account_helpers import ADMIN, mine, open_wallet, register


def transfer(source: dict[str, Any], target: dict[str, Any], amount: str, key: str) -> Any:
    return {
        "fromWalletId": source["id"],
        "toWalletId": target["id"],
        "amount": amount,
        "idempotencyKey": key,
    }


async def test_a_key_used_by_one_user_is_free_for_another(http: AsyncClient) -> None:
    carol, carol_headers = await register(http, "carol")
    dave, dave_headers = await register(http, "dave")
    carol_usd = await open_wallet(http, carol_headers)
    dave_usd = await open_wallet(http, dave_headers)
    await mine(http, carol["id"], "10")
    await mine(http, dave["id"], "10")

    first = await http.post(
        "/api/wallets/transfer",
        json=transfer(carol_usd, dave_usd, "3", "k-1"),
        headers=carol_headers,
    )
    assert first.status_code == 201, first.text
    # The same key, from Dave, for his own transfer: a new transaction (was 409 conflict).
    theirs = await http.post(
        "/api/wallets/transfer",
        json=transfer(dave_usd, carol_usd, "1", "k-1"),
        headers=dave_headers,
    )
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != first.json()["id"]
    # Carol's retry still answers her own transaction, once.
    again = await http.post(
        "/api/wallets/transfer",
        json=transfer(carol_usd, dave_usd, "3", "k-1"),
        headers=carol_headers,
    )
    assert (again.status_code, again.json()) == (201, first.json())
    balances = [
        (await http.get(f"/api/wallets/{w['id']}", headers=ADMIN)).json()["balance"]
        for w in (carol_usd, dave_usd)
    ]
    assert balances == ["8.00", "12.00"]


async def test_a_user_cannot_take_the_key_of_an_escrow_hold(http: AsyncClient) -> None:
    poster, poster_headers = await register(http, "poster")
    worker, worker_headers = await register(http, "worker")
    poster_usd = await open_wallet(http, poster_headers)
    worker_usd = await open_wallet(http, worker_headers)
    await mine(http, poster["id"], "100")
    await mine(http, worker["id"], "1")
    job = await http.post(
        "/api/jobs",
        json={"title": "t", "description": "d", "budget": "50", "currency": "USD"},
        headers=poster_headers,
    )
    assert job.status_code == 201, job.text
    application = await http.post(
        f"/api/jobs/{job.json()['id']}/applications",
        json={"proposal": "p", "bid": "50"},
        headers=worker_headers,
    )
    assert application.status_code == 201, application.text
    # The worker spends, ahead of time, the key Nexus will give the job's escrow hold.
    squat = transfer(worker_usd, poster_usd, "1", f"escrow:hold:{job.json()['id']}")
    squatted = await http.post("/api/wallets/transfer", json=squat, headers=worker_headers)
    assert squatted.status_code == 201, squatted.text

    accepted = await http.post(
        f"/api/applications/{application.json()['id']}/accept", headers=poster_headers
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] != "released"
    poster_wallet = await http.get(f"/api/wallets/{poster_usd['id']}", headers=ADMIN)
    assert poster_wallet.json()["balance"] == "51.00"
