"""A method a route does not take is a 405 that says which ones it does (`Allow`)."""

from __future__ import annotations

from httpx import AsyncClient


async def test_a_405_names_the_allowed_methods(http: AsyncClient) -> None:
    response = await http.put("/api/auth/login", json={})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["allow"] == "POST"
