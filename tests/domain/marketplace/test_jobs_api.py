"""Jobs over HTTP: post with a budget, list the open ones, apply once to another's job."""

from __future__ import annotations

import uuid
from typing import Any

from httpx import AsyncClient

from azora_nexus.auth.tokens import Role
from azora_nexus.database.engine import Database
from azora_nexus.domain.ledger.models import Currency
from tests.domain.domain_helpers import (
    Actor,
    Headers,
    MakeUser,
    ReadEvents,
    assert_envelope,
    fund,
    outbox_types,
)

JOB = {"title": "Translate a course", "description": "English to isiZulu"}


async def post_job(
    client: AsyncClient, poster: Actor, budget: str = "250", currency: str = "USD"
) -> dict[str, Any]:
    body = JOB | {"budget": budget, "currency": currency}
    response = await client.post("/api/jobs", json=body, headers=poster.headers)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


async def test_post_job_answers_the_job_and_announces_it_publicly(
    client: AsyncClient, make_user: MakeUser, read_events: ReadEvents
) -> None:
    poster = await make_user()
    job = await post_job(client, poster, "250.5")
    assert job == {
        "id": job["id"],
        "posterId": poster.sid,
        "title": JOB["title"],
        "description": JOB["description"],
        "budget": "250.50",
        "currency": "USD",
        "status": "open",
        "createdAt": job["createdAt"],
    }
    [event] = await read_events("marketplace.job.posted")
    assert_envelope(
        event,
        event_type="marketplace.job.posted",
        payload={
            "jobId": job["id"],
            "posterId": poster.sid,
            "title": JOB["title"],
            "budget": "250.50",
            "currency": "USD",
        },
        source="marketplace",
        user_id=None,
    )


async def test_post_job_refuses_bad_budgets_and_anonymous_callers(
    client: AsyncClient, make_user: MakeUser, headers: Headers, domain_db: Database
) -> None:
    poster = await make_user()
    for budget, currency in (
        ("1.001", "USD"),  # USD has 2 places
        ("0.000000001", "BTC"),  # BTC has 8
        ("0", "USD"),
        ("-5", "USD"),
        (10, "USD"),  # a JSON number: money is a decimal string
        ("ten", "USD"),
        ("1" * 21, "AZR"),
        ("5", "EUR"),
    ):
        body = JOB | {"budget": budget, "currency": currency}
        response = await client.post("/api/jobs", json=body, headers=poster.headers)
        assert response.status_code == 422, (budget, currency)
        assert response.json()["error"]["code"] == "invalid"
    ok = {**JOB, "budget": "1", "currency": "USD"}
    assert (await client.post("/api/jobs", json=ok)).status_code == 401
    assert (
        await client.post("/api/jobs", json=ok, headers=headers(Role.SERVICE))
    ).status_code == 403
    assert await outbox_types(domain_db) == []


async def test_open_jobs_list_in_pages_and_drop_closed_ones(
    client: AsyncClient, make_user: MakeUser, domain_db: Database
) -> None:
    poster, worker = await make_user(), await make_user()
    await fund(domain_db, poster.id, Currency.USD, "100")
    jobs = [await post_job(client, poster, "10") for _ in range(5)]
    application = await client.post(
        f"/api/jobs/{jobs[1]['id']}/applications",
        json={"proposal": "me", "bid": "10"},
        headers=worker.headers,
    )
    accepted = await client.post(
        f"/api/applications/{application.json()['id']}/accept", headers=poster.headers
    )
    assert accepted.status_code == 200
    first = await client.get("/api/jobs", params={"limit": 2}, headers=worker.headers)
    assert first.status_code == 200
    second = await client.get(
        "/api/jobs", params={"limit": 2, "after": first.json()["next"]}, headers=worker.headers
    )
    assert second.json()["next"] is None
    listed = first.json()["items"] + second.json()["items"]
    assert [j["id"] for j in listed] == [j["id"] for j in jobs if j["id"] != jobs[1]["id"]]
    assert listed[0] == jobs[0]
    assert (await client.get("/api/jobs")).status_code == 401


async def test_apply_once_to_anothers_job_tells_the_poster(
    client: AsyncClient, make_user: MakeUser, read_events: ReadEvents
) -> None:
    poster, worker = await make_user(), await make_user()
    job = await post_job(client, poster, "0.5", "BTC")
    response = await client.post(
        f"/api/jobs/{job['id']}/applications",
        json={"proposal": "I can", "bid": "0.4"},
        headers=worker.headers,
    )
    assert response.status_code == 201, response.text
    application = response.json()
    assert application == {
        "id": application["id"],
        "jobId": job["id"],
        "applicantId": worker.sid,
        "proposal": "I can",
        "bid": "0.40000000",
        "status": "pending",
        "createdAt": application["createdAt"],
    }
    [event] = await read_events("marketplace.application.submitted")
    assert_envelope(
        event,
        event_type="marketplace.application.submitted",
        payload={
            "applicationId": application["id"],
            "jobId": job["id"],
            "applicantId": worker.sid,
            "bid": "0.40000000",
            "currency": "BTC",
        },
        source="marketplace",
        user_id=poster.sid,
    )
    again = await client.post(
        f"/api/jobs/{job['id']}/applications",
        json={"proposal": "again", "bid": "0.3"},
        headers=worker.headers,
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate"


async def test_apply_refusals(
    client: AsyncClient, make_user: MakeUser, domain_db: Database
) -> None:
    poster, worker, late = await make_user(), await make_user(), await make_user()
    job = await post_job(client, poster, "20")
    body = {"proposal": "p", "bid": "5"}
    own = await client.post(
        f"/api/jobs/{job['id']}/applications", json=body, headers=poster.headers
    )
    assert own.status_code == 403
    missing = await client.post(
        f"/api/jobs/{uuid.uuid4()}/applications", json=body, headers=worker.headers
    )
    assert missing.status_code == 404
    for bad in ({"proposal": "p", "bid": "5.001"}, {"proposal": "", "bid": "5"}, {"bid": "5"}):
        response = await client.post(
            f"/api/jobs/{job['id']}/applications", json=bad, headers=worker.headers
        )
        assert response.status_code == 422, bad
    await fund(domain_db, poster.id, Currency.USD, "20")
    applied = await client.post(
        f"/api/jobs/{job['id']}/applications", json=body, headers=worker.headers
    )
    await client.post(f"/api/applications/{applied.json()['id']}/accept", headers=poster.headers)
    closed = await client.post(
        f"/api/jobs/{job['id']}/applications", json=body, headers=late.headers
    )
    assert closed.status_code == 409
    assert closed.json()["error"]["message"] == f"job {job['id']} is closed, not open"
