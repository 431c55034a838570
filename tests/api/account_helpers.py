"""Helpers for API tests of the domain: registered users and the events their calls emitted."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from httpx import AsyncClient

from azora_nexus.auth.tokens import Role, issue_token
from tests.conftest import JWT_SECRET  # the secret the test app is given


def auth_header(role: Role, sub: str | None = None) -> dict[str, str]:
    return bearer(issue_token(JWT_SECRET, sub=sub or role.value, role=role))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN = auth_header(Role.ADMIN)
SERVICE = auth_header(Role.SERVICE, "payment-service")


async def register(client: AsyncClient, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A new user called `name` and the auth header of its token."""
    response = await client.post(
        "/api/auth/register",
        json={"email": f"{name}@example.com", "username": name, "password": f"{name}-secret-pw"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["user"], bearer(body["token"])


async def wait_for_events(
    client: AsyncClient, event_type: str, count: int, *, timeout_s: float = 10.0
) -> list[dict[str, Any]]:
    """The events of `event_type` in history once there are `count` of them (the relay is async)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await client.get(
            "/events", params={"type": event_type, "limit": 1000}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        if len(events) >= count or time.monotonic() > deadline:
            assert len(events) == count, events
            return events
        await asyncio.sleep(0.05)


def without_id_and_time(event: dict[str, Any]) -> dict[str, Any]:
    """The envelope minus what the bus and the clock chose, after checking their shape."""
    assert isinstance(event["id"], str)
    assert "-" in event["id"]
    assert isinstance(event["timestamp"], int)
    assert abs(event["timestamp"] - time.time() * 1000) < 60_000
    return {k: v for k, v in event.items() if k not in ("id", "timestamp")}


async def open_wallet(
    client: AsyncClient, headers: dict[str, str], currency: str = "USD"
) -> dict[str, Any]:
    """The caller's new wallet in `currency`."""
    response = await client.post("/api/wallets", json={"currency": currency}, headers=headers)
    assert response.status_code == 201, response.text
    wallet: dict[str, Any] = response.json()
    return wallet


async def mine(
    client: AsyncClient, user_id: str, amount: str, currency: str = "USD"
) -> dict[str, Any]:
    """Credit `user_id` from the mining pool (as an admin)."""
    response = await client.post(
        "/api/rewards/mining",
        json={"userId": user_id, "currency": currency, "amount": amount},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    transaction: dict[str, Any] = response.json()
    return transaction
