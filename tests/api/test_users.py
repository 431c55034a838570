"""`GET /api/users/{id}` (cache-aside) and `PATCH /api/users/{id}/profile` (own or admin)."""

from __future__ import annotations

import uuid

from httpx import AsyncClient
from redis.asyncio import Redis

from azora_nexus.auth.tokens import Role
from tests.api.account_helpers import ADMIN, auth_header, register


async def cached_user_keys(redis: Redis, user_id: str) -> list[bytes]:
    return [k async for k in redis.scan_iter(match=f"*:v:user:{user_id}")]


async def test_get_user_answers_the_user_with_profile_and_no_hash(client: AsyncClient) -> None:
    user, headers = await register(client, "ada")
    response = await client.get(f"/api/users/{user['id']}", headers=headers)
    assert response.status_code == 200
    assert response.json() == user
    assert "password" not in response.text.lower()


async def test_get_user_hides_the_email_from_other_users_not_from_admins(
    client: AsyncClient,
) -> None:
    user, _ = await register(client, "ada")
    _, other = await register(client, "bob")
    seen_by_other = (await client.get(f"/api/users/{user['id']}", headers=other)).json()
    assert seen_by_other == {**user, "email": None}
    seen_by_admin = (await client.get(f"/api/users/{user['id']}", headers=ADMIN)).json()
    assert seen_by_admin == user


async def test_get_user_refusals(client: AsyncClient) -> None:
    _, headers = await register(client, "ada")
    assert (await client.get(f"/api/users/{uuid.uuid4()}", headers=headers)).status_code == 404
    assert (await client.get("/api/users/not-a-uuid", headers=headers)).status_code == 422
    assert (await client.get(f"/api/users/{uuid.uuid4()}")).status_code == 401


async def test_profile_update_changes_only_what_is_sent_and_invalidates_the_cache(
    client: AsyncClient, redis: Redis
) -> None:
    user, headers = await register(client, "ada")
    path = f"/api/users/{user['id']}"
    assert (await client.get(path, headers=headers)).status_code == 200
    assert len(await cached_user_keys(redis, user["id"])) == 1
    first = await client.patch(
        f"{path}/profile",
        json={"displayName": "Ada L.", "bio": "engines", "location": "London"},
        headers=headers,
    )
    assert first.status_code == 200, first.text
    assert await cached_user_keys(redis, user["id"]) == []
    second = await client.patch(
        f"{path}/profile", json={"bio": None, "avatarUrl": "https://x.test/a.png"}, headers=headers
    )
    expected_profile = {
        "displayName": "Ada L.",
        "bio": None,
        "avatarUrl": "https://x.test/a.png",
        "location": "London",
    }
    assert second.json() == {**user, "profile": expected_profile}
    assert (await client.get(path, headers=headers)).json()["profile"] == expected_profile


async def test_profile_update_is_for_its_owner_or_an_admin(client: AsyncClient) -> None:
    user, _ = await register(client, "ada")
    _, other = await register(client, "bob")
    path = f"/api/users/{user['id']}/profile"
    refused = await client.patch(path, json={"bio": "hacked"}, headers=other)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    by_admin = await client.patch(path, json={"bio": "set by admin"}, headers=ADMIN)
    assert by_admin.status_code == 200
    assert by_admin.json()["profile"]["bio"] == "set by admin"
    missing = await client.patch(
        f"/api/users/{uuid.uuid4()}/profile", json={"bio": "x"}, headers=ADMIN
    )
    assert missing.status_code == 404


async def test_profile_update_refuses_bad_fields(client: AsyncClient) -> None:
    user, headers = await register(client, "ada")
    path = f"/api/users/{user['id']}/profile"
    for body in ({"avatarUrl": "javascript:alert(1)"}, {"bio": "x" * 5001}, {"location": "a\x00b"}):
        response = await client.patch(path, json=body, headers=headers)
        assert response.status_code == 422, body
    service = auth_header(Role.SERVICE, "profile-service")
    assert (await client.patch(path, json={"bio": "ok"}, headers=service)).status_code == 200
