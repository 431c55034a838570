"""A user with a trace in every domain, made through the public routes, and a counterparty.

Alice registers, fills her profile, signs in, opens a wallet, is paid a mining reward,
pays Bob and is refunded (memos naming her), authors a course (with an admin token naming
her) and completes it (certificate and badge), posts a job that Bob takes (accepted into
escrow, released), applies to Bob's job, posts a job that stays open, and has an activity
and a content document (as other services would write them) and an alert published about
her over HTTP.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

from httpx import AsyncClient

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.documents.client import Documents
from tests.conftest import JWT_SECRET  # the secret the test app is given


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer(issue_token(JWT_SECRET, sub="admin", role=Role.ADMIN))
SERVICE = bearer(issue_token(JWT_SECRET, sub="payment-service", role=Role.SERVICE))


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    @property
    def needles(self) -> tuple[str, str, str]:
        """How the person is spelled: what must be found nowhere after erasure."""
        return (self.id, self.email, self.username)


@dataclass(frozen=True)
class Life:
    alice: Person
    bob: Person
    alice_wallet: str
    bob_wallet: str
    contract: dict[str, Any]


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def register(http: AsyncClient, name: str) -> Person:
    username = f"{name}{secrets.token_hex(4)}"
    email, password = f"{username}@example.com", f"{username}-pass-phrase"
    body = await ok(
        await http.post(
            "/api/auth/register",
            json={"email": email, "username": username, "password": password},
        ),
        201,
    )
    return Person(body["user"]["id"], email, username, password, body["token"])


async def wallet(http: AsyncClient, person: Person) -> str:
    body = await ok(
        await http.post("/api/wallets", json={"currency": "USD"}, headers=person.headers), 201
    )
    return str(body["id"])


async def transfer(
    http: AsyncClient, payer: Person, src: str, dst: str, *, amount: str, memo: str
) -> None:
    await ok(
        await http.post(
            "/api/wallets/transfer",
            json={
                "fromWalletId": src,
                "toWalletId": dst,
                "amount": amount,
                "idempotencyKey": secrets.token_hex(8),
                "memo": memo,
            },
            headers=payer.headers,
        ),
        201,
    )


async def post_job(http: AsyncClient, poster: Person, title: str) -> str:
    body = await ok(
        await http.post(
            "/api/jobs",
            json={
                "title": title,
                "description": f"call {poster.username}",
                "budget": "100",
                "currency": "USD",
            },
            headers=poster.headers,
        ),
        201,
    )
    return str(body["id"])


async def apply(http: AsyncClient, worker: Person, job_id: str) -> str:
    body = await ok(
        await http.post(
            f"/api/jobs/{job_id}/applications",
            json={"proposal": f"{worker.username} can do it", "bid": "90"},
            headers=worker.headers,
        ),
        201,
    )
    return str(body["id"])


async def _money(http: AsyncClient, alice: Person, bob: Person) -> tuple[str, str]:
    alice_wallet, bob_wallet = await wallet(http, alice), await wallet(http, bob)
    await ok(
        await http.post(
            "/api/rewards/mining",
            json={"userId": alice.id, "currency": "USD", "amount": "500"},
            headers=ADMIN,
        ),
        201,
    )
    await transfer(
        http, alice, alice_wallet, bob_wallet, amount="50", memo=f"rent from {alice.username}"
    )
    await transfer(
        http, bob, bob_wallet, alice_wallet, amount="10", memo=f"refund to {alice.email}"
    )
    return alice_wallet, bob_wallet


async def _learning(http: AsyncClient, alice: Person) -> None:
    course = await ok(
        await http.post(
            "/api/courses",
            json={
                "title": "Ledgers",
                "lessons": [{"title": "one", "content": "1"}, {"title": "two", "content": "2"}],
            },
            # An admin token naming Alice: the course records her id as its author.
            headers=bearer(issue_token(JWT_SECRET, sub=alice.id, role=Role.ADMIN)),
        ),
        201,
    )
    await ok(await http.get(f"/api/courses/{course['id']}", headers=alice.headers))  # cached
    enrollment = await ok(
        await http.post(f"/api/courses/{course['id']}/enroll", headers=alice.headers), 201
    )
    await ok(
        await http.patch(
            f"/api/enrollments/{enrollment['id']}/progress",
            json={"progress": 100},
            headers=alice.headers,
        )
    )


async def _work(http: AsyncClient, alice: Person, bob: Person) -> dict[str, Any]:
    job_id = await post_job(http, alice, "Audit my books")
    application_id = await apply(http, bob, job_id)
    contract = await ok(
        await http.post(f"/api/applications/{application_id}/accept", headers=alice.headers)
    )
    await ok(await http.post(f"/api/contracts/{contract['id']}/release", headers=alice.headers))
    await apply(http, alice, await post_job(http, bob, "Paint a fence"))  # stays pending
    await apply(http, bob, await post_job(http, alice, "Walk the dog"))  # stays open
    return dict(contract)


async def live_a_life(http: AsyncClient, documents: Documents) -> Life:
    """Alice and Bob, with Alice's traces in every domain (see the module docstring)."""
    alice, bob = await register(http, "alice"), await register(http, "bob")
    await ok(
        await http.patch(
            f"/api/users/{alice.id}/profile",
            json={"displayName": "Alice Example", "location": "Cape Town"},
            headers=alice.headers,
        )
    )
    await ok(
        await http.post("/api/auth/login", json={"email": alice.email, "password": alice.password})
    )
    alice_wallet, bob_wallet = await _money(http, alice, bob)
    await _learning(http, alice)
    contract = await _work(http, alice, bob)
    now_ms = int(time.time() * 1000)
    await documents.activity.insert_one(
        {"userId": alice.id, "type": "page.view", "timestamp": now_ms}
    )
    await documents.content.insert_one(
        {"key": f"avatar:{alice.id}", "kind": "avatar", "ownerId": alice.id}
    )
    await ok(
        await http.post(
            "/events",
            json={
                "type": "system.alert",
                "payload": {"about": alice.email},
                "source": "tests",
                "userId": alice.id,
            },
            headers=SERVICE,
        ),
        202,
    )
    return Life(alice, bob, alice_wallet, bob_wallet, contract)


async def wait_archived(
    documents: Documents, person: Person, count: int, timeout_s: float = 15
) -> None:
    """Until the Mongo archive holds at least `count` events for the person."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await documents.events.count_documents({"userId": person.id}) >= count:
                return
            await asyncio.sleep(0.05)
