"""`GET /health` asks every backend for real."""

from __future__ import annotations

from httpx import AsyncClient


async def test_health_reports_every_backend_ok(client: AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"postgres", "redis", "mongo"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert check["latencyMs"] >= 0
