"""The lean path of `POST /api/wallets/transfer` (api/lean_transfers.py) answers exactly as
the FastAPI route.

A body sent as `application/json` takes the lean path; the same body sent as
`application/json; charset=utf-8` is not taken by it and goes through FastAPI's route:
each answer is compared with the other's.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from httpx import AsyncClient, Response

from azora_nexus.api.lean_transfers import LeanTransfers
from azora_nexus.auth.tokens import Role, issue_token
from tests.api.account_helpers import bearer, mine, open_wallet, register
from tests.api.test_metrics import samples
from tests.conftest import JWT_SECRET

PATH = "/api/wallets/transfer"


async def both(
    client: AsyncClient, body: dict[str, Any], headers: dict[str, str]
) -> list[Response]:
    lean = await client.post(PATH, json=body, headers=headers)
    routed = await client.post(
        PATH,
        content=orjson.dumps(body),
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    return [lean, routed]


def answer(response: Response) -> tuple[int, str, object]:
    return response.status_code, response.headers["content-type"], response.json()


async def wallets(client: AsyncClient) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """Ada's funded USD wallet, Bob's empty one, and Ada's auth header."""
    ada, own = await register(client, "ada")
    _, other = await register(client, "bob")
    source, target = await open_wallet(client, own), await open_wallet(client, other)
    await mine(client, ada["id"], "100.00")
    return own, source, target


def transfer(source: dict[str, Any], target: dict[str, Any], amount: str) -> dict[str, Any]:
    return {
        "fromWalletId": source["id"],
        "toWalletId": target["id"],
        "amount": amount,
        "idempotencyKey": str(uuid.uuid4()),
    }


async def test_a_transfer_is_the_same_answer_on_both_paths(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    own, source, target = await wallets(client)
    body = transfer(source, target, "12.50")
    taken: list[str] = []
    answered = LeanTransfers.transfer

    async def counted(self: LeanTransfers, *args: Any) -> None:
        taken.append(body["idempotencyKey"])
        await answered(self, *args)

    monkeypatch.setattr(LeanTransfers, "transfer", counted)
    lean, routed = await both(client, body, own)  # posted, then replayed by its key
    assert len(taken) == 1  # the first took the lean path, the second FastAPI's route
    assert answer(lean)[:2] == answer(routed)[:2] == (201, "application/json")
    assert lean.json() == routed.json()
    assert lean.json()["postings"][1] == {
        "walletId": target["id"],
        "systemAccountId": None,
        "currency": "USD",
        "amount": "12.50",
    }
    wallet = await client.get(f"/api/wallets/{source['id']}", headers=own)
    assert wallet.json()["balance"] == "87.50"  # posted once


async def test_refusals_are_the_same_answer_on_both_paths(client: AsyncClient) -> None:
    own, source, target = await wallets(client)
    expired = issue_token(JWT_SECRET, sub="x", role=Role.USER, ttl_s=-60)
    _, stranger = await register(client, "eve")
    cases = [
        (transfer(source, target, "500.00"), own),  # 409 insufficient funds
        (transfer(target, source, "1.00"), own),  # 403 not the owner's wallet
        (transfer(source, {"id": str(uuid.uuid4())}, "1.00"), own),  # 404
        (transfer(source, target, "1.001"), own),  # 422 past USD's scale
        (transfer(source, source, "1.00"), own),  # 422 one wallet
        ({**transfer(source, target, "1.00"), "amount": "-1"}, own),  # 422 the body's model
        ({"fromWalletId": source["id"]}, own),  # 422 fields missing
        (transfer(source, target, "1.00"), bearer(expired)),  # 401
        (transfer(source, target, "1.00"), bearer("not-a-jwt")),  # 401
        (transfer(source, target, "1.00"), {}),  # 401 no token
        (transfer(source, target, "1.00"), stranger),  # 403
    ]
    for body, headers in cases:
        lean, routed = await both(client, body, headers)
        assert lean.status_code in (401, 403, 404, 409, 422), lean.text
        assert answer(lean) == answer(routed)
        assert set(lean.json()) == {"error"}
    wallet = await client.get(f"/api/wallets/{source['id']}", headers=own)
    assert wallet.json()["balance"] == "100.00"


async def test_lean_transfers_are_counted_under_the_route_template(client: AsyncClient) -> None:
    own, source, target = await wallets(client)
    for _ in range(3):
        response = await client.post(PATH, json=transfer(source, target, "1.00"), headers=own)
        assert response.status_code == 201
    refused = await client.post(PATH, json=transfer(source, target, "900.00"), headers=own)
    assert refused.status_code == 409

    values = samples((await client.get("/metrics")).text)
    route = {("method", "POST"), ("route", PATH)}
    assert values[("azora_http_requests_total", frozenset(route | {("status", "201")}))] == 3
    assert values[("azora_http_requests_total", frozenset(route | {("status", "409")}))] == 1
    assert values[("azora_http_request_duration_seconds_count", frozenset(route))] == 4
