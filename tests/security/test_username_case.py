"""Usernames and emails are unique whatever their case (issue 15, item 12): `TIM_X` cannot
register beside `tim_x` and pass for them."""

from __future__ import annotations

from httpx import AsyncClient

from tests.api.account_helpers import ADMIN


async def register(http: AsyncClient, email: str, username: str) -> tuple[int, dict[str, object]]:
    response = await http.post(
        "/api/auth/register",
        json={"email": email, "username": username, "password": "a long passphrase"},
    )
    return response.status_code, response.json()


async def test_a_username_differing_only_by_case_is_taken(http: AsyncClient) -> None:
    assert (await register(http, "tim@example.com", "tim_x"))[0] == 201
    for variant in ("TIM_X", "Tim_X", "tim_X"):
        status, body = await register(http, f"{variant}@example.org", variant)
        assert (status, body) == (
            409,
            {"error": {"code": "duplicate", "message": "this username is taken"}},
        )
    users = await http.get("/api/admin/users", headers=ADMIN)
    assert [u["username"] for u in users.json()["items"]] == ["tim_x"]


async def test_an_email_differing_only_by_case_is_taken(http: AsyncClient) -> None:
    assert (await register(http, "ann@example.com", "ann"))[0] == 201
    status, body = await register(http, "ANN@Example.COM", "ann2")
    assert (status, body) == (
        409,
        {"error": {"code": "duplicate", "message": "this email is taken"}},
    )
