"""An amount with more places than its currency has is refused naming that currency."""

from __future__ import annotations

from httpx import AsyncClient

from tests.sovereignty.life import register, wallet


async def test_a_usd_amount_with_19_places_names_usd(http: AsyncClient) -> None:
    alice, bob = await register(http, "alice"), await register(http, "bob")
    source, target = await wallet(http, alice), await wallet(http, bob)
    response = await http.post(
        "/api/wallets/transfer",
        json={
            "fromWalletId": source,
            "toWalletId": target,
            "amount": "1." + "1" * 19,
            "idempotencyKey": "k-19",
        },
        headers=alice.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "amount: USD allows at most 2 decimal places"
