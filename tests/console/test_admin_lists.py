"""`GET /api/admin/users` and `GET /api/admin/wallets`: read-only lists for admins, paged."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from azora_nexus.auth.tokens import Role
from tests.console.console_helpers import ADMIN, bearer, created, register, token_for


async def all_pages(client: AsyncClient, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a list route, following `next` to the end."""
    pages: list[list[dict[str, Any]]] = []
    after: str | None = None
    while True:
        query = params | ({"after": after} if after else {})
        response = await client.get(path, params=query, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        after = body["next"]
        if after is None:
            return pages


async def test_admins_page_through_every_active_user(client: AsyncClient) -> None:
    names = ["ada", "grace", "alan"]
    users = [(await register(client, name))[0] for name in names]
    pages = await all_pages(client, "/api/admin/users", limit=2)
    assert [len(page) for page in pages] == [2, 1]
    listed = [user for page in pages for user in page]
    assert listed == users  # oldest first, emails shown, profile included


async def test_erased_users_are_not_listed(client: AsyncClient) -> None:
    kept, _ = await register(client, "kept")
    gone, _ = await register(client, "gone")
    assert (await client.delete(f"/api/users/{gone['id']}", headers=ADMIN)).status_code == 204
    pages = await all_pages(client, "/api/admin/users")
    assert [user["id"] for page in pages for user in page] == [kept["id"]]


async def test_admins_list_every_wallet_or_one_owners(client: AsyncClient) -> None:
    ada, ada_auth = await register(client, "ada")
    grace, grace_auth = await register(client, "grace")
    usd = created(await client.post("/api/wallets", json={"currency": "USD"}, headers=ada_auth))
    azr = created(await client.post("/api/wallets", json={"currency": "AZR"}, headers=grace_auth))
    eth = created(await client.post("/api/wallets", json={"currency": "ETH"}, headers=ada_auth))
    everyone = await all_pages(client, "/api/admin/wallets", limit=2)
    assert [len(page) for page in everyone] == [2, 1]
    assert [wallet for page in everyone for wallet in page] == [usd, azr, eth]
    adas = await all_pages(client, "/api/admin/wallets", userId=ada["id"])
    assert adas == [[usd, eth]]
    assert usd["balance"] == "0.00"
    assert grace["id"] == azr["userId"]


async def test_only_admins_may_list(client: AsyncClient) -> None:
    user, user_auth = await register(client, "ada")
    service = bearer(token_for(Role.SERVICE, "payment-service"))
    for path in ("/api/admin/users", "/api/admin/wallets"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=user_auth)).status_code == 403
        refused = await client.get(path, headers=service)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
    assert user["role"] == "user"


async def test_a_bad_cursor_or_owner_is_422(client: AsyncClient) -> None:
    bad_cursor = await client.get("/api/admin/users", params={"after": "nope"}, headers=ADMIN)
    assert bad_cursor.status_code == 422
    bad_owner = await client.get("/api/admin/wallets", params={"userId": "x"}, headers=ADMIN)
    assert bad_owner.status_code == 422
    assert bad_owner.json()["error"]["code"] == "invalid"
