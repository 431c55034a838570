"""`GET /cache/stats`: admins see the node's counters; others are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from prometheus_client import generate_latest

from azora_nexus.app import create_api
from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.cache import keys
from azora_nexus.config import Settings
from azora_nexus.nexus import Nexus

API = "http://nexus"


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[tuple[AsyncClient, Nexus]]:
    app: FastAPI = create_api(settings)
    async with (
        LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url=API) as http,
    ):
        yield http, app.state.nexus


def auth_header(nexus: Nexus, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(nexus.jwt_secret, sub='someone', role=role)}"}


async def test_an_admin_gets_the_counters(api: tuple[AsyncClient, Nexus]) -> None:
    http, nexus = api

    async def load() -> str:
        return "value"

    for _ in range(3):
        await nexus.cache.read_through(keys.key("stats", "probe"), load)
    await nexus.cache.invalidate([keys.key("stats", "probe")])

    answer = await http.get("/cache/stats", headers=auth_header(nexus, Role.ADMIN))

    assert answer.status_code == 200
    body = answer.json()
    assert {k: body[k] for k in ("hits", "misses", "hitRate", "fills", "invalidations")} == {
        "hits": 2,
        "misses": 1,
        "hitRate": round(2 / 3, 6),
        "fills": 1,
        "invalidations": 1,
    }
    assert body["breaker"] == "closed"


@pytest.mark.parametrize(("role", "status"), [(Role.USER, 403), (Role.SERVICE, 403)])
async def test_other_roles_are_refused(
    api: tuple[AsyncClient, Nexus], role: Role, status: int
) -> None:
    answer = await api[0].get("/cache/stats", headers=auth_header(api[1], role))

    assert answer.status_code == status
    assert answer.json()["error"]["code"] == "forbidden"


async def test_no_token_is_401(api: tuple[AsyncClient, Nexus]) -> None:
    answer = await api[0].get("/cache/stats")

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"


async def test_the_counters_are_in_the_nodes_prometheus_registry(
    api: tuple[AsyncClient, Nexus],
) -> None:
    exposed = generate_latest(api[1].metrics.registry).decode()

    assert "azora_cache_hits_total 0.0" in exposed
    assert "azora_cache_breaker_open 0.0" in exposed
