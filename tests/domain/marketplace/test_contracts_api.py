"""Contracts over HTTP: accept holds the budget in escrow, release pays the worker, once each."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import text

from azora_nexus.cache import keys
from azora_nexus.cache.cache import Cache
from azora_nexus.database.engine import Database
from azora_nexus.domain.ledger.models import Currency
from tests.domain.domain_helpers import (
    Actor,
    MakeUser,
    ReadEvents,
    assert_envelope,
    assert_ledger_exact,
    balance_of,
    escrow_balance,
    fund,
)


async def job_with_applicants(
    client: AsyncClient, poster: Actor, workers: list[Actor], budget: str = "100"
) -> tuple[dict[str, Any], list[str]]:
    """A USD job of `poster` and one application from each worker."""
    body = {"title": "Build a wallet UI", "budget": budget, "currency": "USD"}
    job = (await client.post("/api/jobs", json=body, headers=poster.headers)).json()
    applications = []
    for worker in workers:
        response = await client.post(
            f"/api/jobs/{job['id']}/applications",
            json={"proposal": "hire me", "bid": "90"},
            headers=worker.headers,
        )
        assert response.status_code == 201
        applications.append(response.json()["id"])
    return job, applications


async def accept(client: AsyncClient, application_id: str, who: Actor) -> Response:
    return await client.post(f"/api/applications/{application_id}/accept", headers=who.headers)


async def release(client: AsyncClient, contract_id: str, who: Actor) -> Response:
    return await client.post(f"/api/contracts/{contract_id}/release", headers=who.headers)


def contract_payload(contract: dict[str, Any], transaction_id: str) -> dict[str, Any]:
    return {
        "contractId": contract["id"],
        "jobId": contract["jobId"],
        "applicationId": contract["applicationId"],
        "posterId": contract["posterId"],
        "workerId": contract["workerId"],
        "amount": contract["amount"],
        "currency": "USD",
        "transactionId": transaction_id,
    }


async def transaction_of(db: Database, contract_id: str, column: str) -> str:
    async with db.sessions() as session:
        found = await session.scalar(
            text(f"SELECT {column} FROM contracts WHERE id = :id"), {"id": contract_id}
        )
    return str(found)


async def test_accept_signs_the_contract_and_holds_the_budget_in_escrow(
    *,
    client: AsyncClient,
    make_user: MakeUser,
    domain_db: Database,
    read_events: ReadEvents,
    side_cache: Cache,
) -> None:
    poster, worker, other = await make_user(), await make_user(), await make_user()
    wallet_id = await fund(domain_db, poster.id, Currency.USD, "150")
    job, (chosen, rejected) = await job_with_applicants(client, poster, [worker, other])

    async def stale() -> str:
        return "stale"

    await side_cache.read_through(keys.wallet(wallet_id), stale)
    response = await accept(client, chosen, poster)
    assert response.status_code == 200, response.text
    contract = response.json()
    assert contract == {
        "id": contract["id"],
        "jobId": job["id"],
        "applicationId": chosen,
        "posterId": poster.sid,
        "workerId": worker.sid,
        "amount": "100.00",
        "currency": "USD",
        "status": "escrowed",
    }
    assert await balance_of(domain_db, poster.id, Currency.USD) == Decimal(50)
    assert await escrow_balance(domain_db, Currency.USD) == Decimal(100)
    await assert_ledger_exact(domain_db)

    async def fresh() -> str:
        return "fresh"

    assert await side_cache.read_through(keys.wallet(wallet_id), fresh) == "fresh"
    hold = await transaction_of(domain_db, contract["id"], "escrow_transaction_id")
    signed = await read_events("marketplace.contract.signed", 2)
    for event, user in zip(signed, (poster, worker), strict=True):
        assert_envelope(
            event,
            event_type="marketplace.contract.signed",
            payload=contract_payload(contract, hold),
            source="marketplace",
            user_id=user.sid,
        )
    jobs = await client.get("/api/jobs", headers=worker.headers)
    assert jobs.json()["items"] == []
    # The other applicant was turned down when the job closed.
    late = await accept(client, rejected, poster)
    assert late.status_code == 409


async def test_accept_refusals_leave_the_job_open(
    client: AsyncClient, make_user: MakeUser, domain_db: Database
) -> None:
    poster, worker = await make_user(), await make_user()
    job, [application] = await job_with_applicants(client, poster, [worker])
    assert (await accept(client, application, worker)).status_code == 403
    missing = await client.post(f"/api/applications/{uuid.uuid4()}/accept", headers=poster.headers)
    assert missing.status_code == 404
    no_wallet = await accept(client, application, poster)
    assert no_wallet.status_code == 409
    assert no_wallet.json()["error"]["code"] == "insufficient_funds"
    await fund(domain_db, poster.id, Currency.USD, "99.99")
    short = await accept(client, application, poster)
    assert short.status_code == 409
    assert short.json()["error"]["code"] == "insufficient_funds"
    listed = await client.get("/api/jobs", headers=worker.headers)
    assert [j["id"] for j in listed.json()["items"]] == [job["id"]]
    assert await balance_of(domain_db, poster.id, Currency.USD) == Decimal("99.99")
    await fund(domain_db, poster.id, Currency.USD, "0.01")
    assert (await accept(client, application, poster)).status_code == 200
    again = await accept(client, application, poster)
    assert again.status_code == 409
    assert await balance_of(domain_db, poster.id, Currency.USD) == Decimal(0)


async def test_release_pays_the_worker_once_into_a_new_wallet(
    *,
    client: AsyncClient,
    make_user: MakeUser,
    domain_db: Database,
    read_events: ReadEvents,
    side_cache: Cache,
) -> None:
    poster, worker = await make_user(), await make_user()
    await fund(domain_db, poster.id, Currency.USD, "100")
    _, [application] = await job_with_applicants(client, poster, [worker])
    contract = (await accept(client, application, poster)).json()
    assert (await release(client, contract["id"], worker)).status_code == 403
    missing = await client.post(f"/api/contracts/{uuid.uuid4()}/release", headers=poster.headers)
    assert missing.status_code == 404

    async def stale() -> str:
        return "stale"

    await side_cache.read_through(keys.user_wallets(worker.id), stale)
    response = await release(client, contract["id"], poster)
    assert response.status_code == 200, response.text

    async def fresh() -> str:
        return "fresh"

    assert await side_cache.read_through(keys.user_wallets(worker.id), fresh) == "fresh"
    assert response.json() == contract | {"status": "released"}
    assert await balance_of(domain_db, worker.id, Currency.USD) == Decimal(100)
    assert await escrow_balance(domain_db, Currency.USD) == Decimal(0)
    await assert_ledger_exact(domain_db)

    paid = await transaction_of(domain_db, contract["id"], "release_transaction_id")
    released = await read_events("marketplace.payment.released", 2)
    for event, user in zip(released, (poster, worker), strict=True):
        assert_envelope(
            event,
            event_type="marketplace.payment.released",
            payload=contract_payload(contract, paid),
            source="marketplace",
            user_id=user.sid,
        )
    [opened] = await read_events("finance.wallet.created")
    assert opened["userId"] == worker.sid
    assert opened["payload"]["currency"] == "USD"
    again = await release(client, contract["id"], poster)
    assert again.status_code == 409
    assert again.json()["error"]["message"] == f"contract {contract['id']} is released already"
    assert await balance_of(domain_db, worker.id, Currency.USD) == Decimal(100)


async def test_concurrent_accepts_and_releases_give_one_contract_and_one_payment(
    client: AsyncClient, make_user: MakeUser, domain_db: Database
) -> None:
    poster = await make_user()
    workers = [await make_user() for _ in range(6)]
    await fund(domain_db, poster.id, Currency.USD, "250")
    _, applications = await job_with_applicants(client, poster, workers)
    # Every application at once, the first one three times over.
    racing = [applications[0], applications[0], *applications]
    accepted = await asyncio.gather(*(accept(client, a, poster) for a in racing))
    statuses = sorted(r.status_code for r in accepted)
    assert statuses == [200] + [409] * (len(racing) - 1)
    [contract] = [r.json() for r in accepted if r.status_code == 200]
    assert await balance_of(domain_db, poster.id, Currency.USD) == Decimal(150)

    released = await asyncio.gather(*(release(client, contract["id"], poster) for _ in range(6)))
    assert sorted(r.status_code for r in released) == [200] + [409] * 5
    worker = next(w for w in workers if w.sid == contract["workerId"])
    assert await balance_of(domain_db, worker.id, Currency.USD) == Decimal(100)
    for other in workers:
        if other is not worker:
            assert await balance_of(domain_db, other.id, Currency.USD) is None
    assert await balance_of(domain_db, poster.id, Currency.USD) == Decimal(150)
    assert await escrow_balance(domain_db, Currency.USD) == Decimal(0)
    await assert_ledger_exact(domain_db)
    async with domain_db.sessions() as session:
        counts = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM contracts), "
                    "(SELECT count(*) FROM ledger_transactions WHERE kind = 'escrow_release')"
                )
            )
        ).one()
    assert tuple(counts) == (1, 1)


async def test_a_budget_of_38_digits_moves_exactly(
    client: AsyncClient, make_user: MakeUser, domain_db: Database
) -> None:
    # More digits than Decimal's default context (28): a negation that rounds would unbalance.
    budget = "12345678901234567890.123456789012345678"
    poster, worker = await make_user(), await make_user()
    await fund(domain_db, poster.id, Currency.AZR, budget)
    body = {"title": "Big", "budget": budget, "currency": "AZR"}
    job = (await client.post("/api/jobs", json=body, headers=poster.headers)).json()
    assert job["budget"] == budget
    applied = await client.post(
        f"/api/jobs/{job['id']}/applications",
        json={"proposal": "p", "bid": budget},
        headers=worker.headers,
    )
    contract = (await accept(client, applied.json()["id"], poster)).json()
    assert contract["amount"] == budget
    assert await escrow_balance(domain_db, Currency.AZR) == Decimal(budget)
    assert (await release(client, contract["id"], poster)).status_code == 200
    assert await balance_of(domain_db, worker.id, Currency.AZR) == Decimal(budget)
    assert await balance_of(domain_db, poster.id, Currency.AZR) == Decimal(0)
    await assert_ledger_exact(domain_db)


async def test_an_application_from_a_closed_account_cannot_be_accepted(
    client: AsyncClient, make_user: MakeUser, domain_db: Database
) -> None:
    poster, worker = await make_user(), await make_user()
    await fund(domain_db, poster.id, Currency.USD, "100")
    _, [application] = await job_with_applicants(client, poster, [worker])
    async with domain_db.transaction() as session:
        await session.execute(
            text("UPDATE users SET is_active = false WHERE id = :id"), {"id": worker.id}
        )
    refused = await accept(client, application, poster)
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        f"the applicant of {application} has closed their account"
    )
    assert await balance_of(domain_db, poster.id, Currency.USD) == Decimal(100)
