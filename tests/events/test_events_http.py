"""`POST /events`, `GET /events` and `GET /events/types` over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from httpx import AsyncClient

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.config import Settings
from azora_nexus.events.taxonomy import EVENT_TYPES

CONTRACT_TYPES = {
    "education.course.enrolled",
    "education.lesson.completed",
    "education.assessment.submitted",
    "education.certificate.issued",
    "finance.wallet.created",
    "finance.transaction.completed",
    "finance.mining.reward",
    "finance.ubi.distributed",
    "marketplace.job.posted",
    "marketplace.application.submitted",
    "marketplace.contract.signed",
    "marketplace.payment.released",
    "system.user.registered",
    "system.user.login",
    "system.user.erased",
    "system.alert",
    "system.health.check",
}

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def auth(settings: Settings) -> Auth:
    """`auth(role, sub)`: an Authorization header with a valid token."""

    def header(role: Role, sub: str | None = None) -> dict[str, str]:
        token = issue_token(settings.jwt_secret or "", sub=sub or role.value, role=role)
        return {"Authorization": f"Bearer {token}"}

    return header


def alert(message: str, user_id: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "type": "system.alert",
        "payload": {"message": message},
        "source": "tests",
    }
    if user_id is not None:
        body["userId"] = user_id
    return body


async def test_types_list_every_contract_type_with_domain_and_meaning(client: AsyncClient) -> None:
    response = await client.get("/events/types")
    assert response.status_code == 200
    types = {t["type"]: t for t in response.json()["types"]}
    assert set(types) >= CONTRACT_TYPES
    assert set(types) == set(EVENT_TYPES)
    assert types["finance.transaction.completed"]["domain"] == "finance"
    assert all(t["description"] for t in types.values())


async def test_publish_answers_202_with_the_bus_id_and_history_returns_the_envelope(
    client: AsyncClient,
    auth: Auth,
) -> None:
    admin = auth(Role.ADMIN)
    service = auth(Role.SERVICE, "payment-service")
    body = {
        "type": "finance.transaction.completed",
        "payload": {"walletId": "w1", "amount": "100.00"},
        "source": "payment-service",
        "userId": "u1",
    }
    response = await client.post("/events", json=body, headers=service)
    assert response.status_code == 202
    event_id = response.json()["id"]
    history = await client.get("/events", headers=admin)
    assert history.status_code == 200
    [event] = history.json()["events"]
    timestamp = event.pop("timestamp")
    assert event == {"id": event_id, **body}
    assert isinstance(timestamp, int)
    assert abs(timestamp - int(event_id.split("-")[0])) < 5000


async def test_publish_refuses_missing_bad_and_user_tokens(client: AsyncClient, auth: Auth) -> None:
    assert (await client.post("/events", json=alert("x"))).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert (await client.post("/events", json=alert("x"), headers=bad)).status_code == 401
    user = auth(Role.USER, "u1")
    response = await client.post("/events", json=alert("x"), headers=user)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_publish_refuses_unknown_types_bad_bodies_and_float_amounts(
    client: AsyncClient,
    auth: Auth,
) -> None:
    admin = auth(Role.ADMIN)
    unknown: dict[str, object] = {"type": "finance.nope", "payload": {}, "source": "tests"}
    float_amount = {
        "type": "finance.mining.reward",
        "payload": {"amount": 1.5},
        "source": "tests",
    }
    bodies: list[dict[str, object]] = [
        unknown,
        {"payload": {}},
        {**unknown, "type": "system.alert", "payload": 3},
    ]
    for body in bodies:
        response = await client.post("/events", json=body, headers=admin)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "invalid"
    assert (await client.post("/events", json=float_amount, headers=admin)).status_code == 422
    not_json = await client.post("/events", content=b"{nope", headers=admin)
    assert not_json.status_code == 422  # CONTRACT.md: any bad body
    assert not_json.json()["error"]["code"] == "invalid"
    assert (await client.get("/events", headers=admin)).json() == {"events": []}


async def test_publish_refuses_a_body_over_64_kib(client: AsyncClient, auth: Auth) -> None:
    admin = auth(Role.ADMIN)
    body: dict[str, object] = alert("x" * (64 * 1024))
    response = await client.post("/events", json=body, headers=admin)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_history_shows_users_public_events_and_their_own_only(
    client: AsyncClient, auth: Auth
) -> None:
    admin = auth(Role.ADMIN)
    service = auth(Role.SERVICE, "payment-service")
    ids = []
    for body in (alert("public"), alert("for a", "a"), alert("for b", "b")):
        ids.append((await client.post("/events", json=body, headers=admin)).json()["id"])

    async def seen(headers: dict[str, str], query: str = "") -> list[str]:
        response = await client.get(f"/events{query}", headers=headers)
        assert response.status_code == 200
        return [e["id"] for e in response.json()["events"]]

    assert await seen(auth(Role.USER, "a")) == [ids[0], ids[1]]
    assert await seen(auth(Role.USER, "b")) == [ids[0], ids[2]]
    assert await seen(auth(Role.USER, "a"), "?userId=b") == []
    assert await seen(admin) == ids
    assert await seen(service, "?userId=b") == [ids[2]]
    assert (await client.get("/events")).status_code == 401


async def test_history_pages_after_an_id_and_filters_by_type_and_pattern(
    client: AsyncClient,
    auth: Auth,
) -> None:
    admin = auth(Role.ADMIN)
    ids = []
    for i in range(5):
        body = alert(str(i)) if i % 2 else {**alert(str(i)), "type": "system.health.check"}
        ids.append((await client.post("/events", json=body, headers=admin)).json()["id"])

    async def page(query: str) -> list[str]:
        response = await client.get(f"/events?{query}", headers=admin)
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["events"]]

    assert await page(f"after={ids[1]}&limit=2") == ids[2:4]
    assert await page("type=system.alert") == [ids[1], ids[3]]
    assert await page("type=system.*&limit=10") == ids
    assert await page(f"type=system.health.check&after={ids[0]}") == [ids[2], ids[4]]


async def test_history_refuses_bad_after_limit_and_type(client: AsyncClient, auth: Auth) -> None:
    admin = auth(Role.ADMIN)
    for query in (
        "after=yesterday",
        "after=1-2-3",
        "limit=0",
        "limit=100000",
        "limit=x",
        "type=nope",
    ):
        response = await client.get(f"/events?{query}", headers=admin)
        assert response.status_code == 422, query
        assert response.json()["error"]["code"] == "invalid"
