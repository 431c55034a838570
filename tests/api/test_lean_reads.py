"""The lean path of `GET /api/users/{id}` (api/lean.py) answers exactly as the FastAPI route.

A canonical (lower-case) id takes the lean path; the same id in upper case is not matched
by it and goes through FastAPI's route: each answer is compared with the other's.
"""

from __future__ import annotations

import uuid

from httpx import AsyncClient, Response

from azora_nexus.auth.tokens import Role, issue_token
from tests.api.account_helpers import ADMIN, auth_header, bearer, register
from tests.api.test_metrics import samples
from tests.conftest import JWT_SECRET


async def both(client: AsyncClient, user_id: str, headers: dict[str, str]) -> list[Response]:
    lean = await client.get(f"/api/users/{user_id.lower()}", headers=headers)
    routed = await client.get(f"/api/users/{user_id.upper()}", headers=headers)
    return [lean, routed]


def answer(response: Response) -> tuple[int, str, object]:
    return response.status_code, response.headers["content-type"], response.json()


async def test_a_cached_read_is_the_same_answer_on_both_paths(client: AsyncClient) -> None:
    user, own = await register(client, "ada")
    _, other = await register(client, "bob")
    for headers, expected in ((own, user), (ADMIN, user), (other, {**user, "email": None})):
        first = await both(client, user["id"], headers)  # a miss, then a hit
        second = await both(client, user["id"], headers)  # hits on both paths
        for response in first + second:
            assert answer(response) == (200, "application/json", expected)
        assert second[0].content == second[1].content


async def test_refusals_are_the_same_answer_on_both_paths(client: AsyncClient) -> None:
    user, own = await register(client, "ada")
    expired = issue_token(JWT_SECRET, sub=user["id"], role=Role.USER, ttl_s=-60)
    cases = [
        (str(uuid.uuid4()), own),  # no such user: 404
        (user["id"], bearer(expired)),  # 401 token expired
        (user["id"], bearer("not-a-jwt")),  # 401 invalid token
        (user["id"], {"Authorization": "Basic abc"}),  # 401 missing bearer token
        (user["id"], {}),
    ]
    for user_id, headers in cases:
        lean, routed = await both(client, user_id, headers)
        assert lean.status_code in (401, 404)
        assert answer(lean) == answer(routed)
        assert set(lean.json()) == {"error"}


async def test_lean_reads_are_counted_under_the_route_template(client: AsyncClient) -> None:
    user, own = await register(client, "ada")
    for _ in range(3):
        assert (await client.get(f"/api/users/{user['id']}", headers=own)).status_code == 200
    assert (await client.get(f"/api/users/{uuid.uuid4()}", headers=own)).status_code == 404

    values = samples((await client.get("/metrics")).text)
    route = {("method", "GET"), ("route", "/api/users/{user_id}")}
    assert values[("azora_http_requests_total", frozenset(route | {("status", "200")}))] == 3
    assert values[("azora_http_requests_total", frozenset(route | {("status", "404")}))] == 1
    assert values[("azora_http_request_duration_seconds_count", frozenset(route))] == 4


async def test_a_user_token_reading_another_user_stays_a_user(client: AsyncClient) -> None:
    user, _ = await register(client, "ada")
    stranger = auth_header(Role.USER, str(uuid.uuid4()))
    lean, routed = await both(client, user["id"], stranger)
    assert answer(lean) == answer(routed) == (200, "application/json", {**user, "email": None})
