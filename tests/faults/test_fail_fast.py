"""Frozen backends (SIGSTOP of the real server): 503 naming the backend within the timeout,
no waiting after the first, everything else keeps working, recovery without a restart."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import AsyncClient, Response

from azora_nexus.app import create_app
from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.errors import BackendUnavailable
from tests.faults.fault_helpers import JWT_SECRET, RETRY_S, TIMEOUT_S, OwnBackends

ADMIN = {"Authorization": f"Bearer {issue_token(JWT_SECRET, sub='admin', role=Role.ADMIN)}"}
MARGIN_S = 0.75  # scheduling and the in-process client
_names = iter(range(1_000_000))


async def timed(call: Any) -> tuple[Response, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


def assert_unavailable(response: Response, backend: str) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "backend_unavailable"
    assert backend in error["message"]


async def register(client: AsyncClient) -> Response:
    name = f"faulty{next(_names)}x{time.monotonic_ns() % 1_000_000}"
    return await client.post(
        "/api/auth/register",
        json={"email": f"{name}@example.com", "username": name, "password": f"{name}-secret-pw"},
    )


async def until_status(call: Any, status: int, within_s: float) -> float:
    """Seconds until `call()` answers `status`, failing after `within_s`."""
    started = time.monotonic()
    last: Response | None = None
    while time.monotonic() - started < within_s:
        last = await call()
        if last.status_code == status:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"still {last.status_code if last else None} after {within_s} s")


async def publish(client: AsyncClient, message: str) -> Response:
    return await client.post(
        "/events",
        headers=ADMIN,
        json={"type": "system.alert", "payload": {"m": message}, "source": "t"},
    )


async def test_frozen_postgres_fails_fast_and_recovers(
    own_backends: OwnBackends, fault_client: AsyncClient
) -> None:
    assert (await register(fault_client)).status_code == 201
    with own_backends.frozen("postgres"):
        first, first_s = await timed(register(fault_client))
        assert_unavailable(first, "postgres")
        assert first_s < TIMEOUT_S + MARGIN_S
        listing = fault_client.get("/api/admin/users", headers=ADMIN)
        second, second_s = await timed(listing)
        assert_unavailable(second, "postgres")
        assert second_s < TIMEOUT_S / 2  # the breaker is open: no timeout waited out
        health, health_s = await timed(fault_client.get("/health"))
        assert health.status_code == 503
        assert health.json()["checks"]["postgres"]["ok"] is False
        assert health_s < TIMEOUT_S + MARGIN_S
        # What needs no PostgreSQL keeps working.
        assert (await fault_client.get("/events/types")).status_code == 200
        assert (await publish(fault_client, "pg frozen")).status_code == 202
    recovered_s = await until_status(lambda: register(fault_client), 201, RETRY_S + TIMEOUT_S + 3)
    assert recovered_s < RETRY_S + TIMEOUT_S + 1
    assert (await fault_client.get("/health")).status_code == 200


async def test_events_accepted_while_redis_is_frozen_reach_the_stream_in_order(
    own_backends: OwnBackends, fault_client: AsyncClient
) -> None:
    before = await publish(fault_client, "before")
    assert before.status_code == 202
    marker = before.json()["id"]
    sent = [f"during {i}" for i in range(20)]
    with own_backends.frozen("redis"):
        answers = []
        for message in sent:
            answer, elapsed_s = await timed(publish(fault_client, message))
            answers.append((answer.status_code, answer.json(), elapsed_s))
        history, _ = await timed(
            fault_client.get("/events", headers=ADMIN, params={"after": marker})
        )
        assert_unavailable(history, "redis")
    assert all(status == 202 for status, _, _ in answers), answers
    assert answers[0][1] == {"id": None, "queued": True}
    assert answers[0][2] < TIMEOUT_S + MARGIN_S
    assert max(elapsed for _, _, elapsed in answers[1:]) < TIMEOUT_S / 2
    after = await publish(fault_client, "after")  # queued behind the others until they drain
    assert after.status_code == 202

    async def delivered() -> list[str]:
        response = await fault_client.get("/events", headers=ADMIN, params={"after": marker})
        if response.status_code != 200:
            return []
        return [e["payload"]["m"] for e in response.json()["events"] if e["type"] == "system.alert"]

    started = time.monotonic()
    seen = await delivered()
    while len(seen) < len(sent) + 1 and time.monotonic() - started < RETRY_S + TIMEOUT_S + 10:
        await asyncio.sleep(0.1)
        seen = await delivered()
    assert seen == [*sent, "after"]  # in order, each once


async def test_history_without_mongo_comes_from_the_stream(
    own_backends: OwnBackends, fault_client: AsyncClient
) -> None:
    ids = [(await publish(fault_client, f"h{i}")).json()["id"] for i in range(3)]
    with own_backends.frozen("mongo"):
        whole, whole_s = await timed(fault_client.get("/events", headers=ADMIN))
        assert whole.status_code == 200, whole.text
        assert {e["id"] for e in whole.json()["events"]} >= set(ids)
        assert whole_s < 0.5
        after = await fault_client.get("/events", headers=ADMIN, params={"after": ids[0]})
        assert [e["id"] for e in after.json()["events"]][:2] == ids[1:]


async def test_a_node_started_while_postgres_is_frozen_fails_naming_it(
    own_backends: OwnBackends,
) -> None:
    app = create_app(own_backends.settings())
    with own_backends.frozen("postgres"):
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="postgres did not answer"):
            async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
                pass  # before: a bare `TimeoutError` with no message
        assert time.monotonic() - started < TIMEOUT_S * 3
