"""A transfer while PostgreSQL is frozen (SIGSTOP of the real server): the group commit's
batch meets it, and the caller gets a 503 naming postgres within the backend timeout, not a
500 or a hang; once it is thawed the same request, retried with its key, posts exactly once."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from httpx import AsyncClient

from tests.api.account_helpers import mine, open_wallet, register
from tests.faults.fault_helpers import RETRY_S, TIMEOUT_S, OwnBackends
from tests.faults.test_fail_fast import MARGIN_S, assert_unavailable, timed, until_status


def body(source: dict[str, Any], target: dict[str, Any], amount: str) -> dict[str, Any]:
    return {
        "fromWalletId": source["id"],
        "toWalletId": target["id"],
        "amount": amount,
        "idempotencyKey": str(uuid.uuid4()),
    }


async def balance(client: AsyncClient, wallet: dict[str, Any], headers: dict[str, str]) -> Decimal:
    response = await client.get(f"/api/wallets/{wallet['id']}", headers=headers)
    assert response.status_code == 200, response.text
    return Decimal(response.json()["balance"])


async def test_a_transfer_with_postgres_frozen_is_a_quick_503_and_its_retry_posts_once(
    own_backends: OwnBackends, fault_client: AsyncClient
) -> None:
    suffix = uuid.uuid4().hex[:8]
    ada, own = await register(fault_client, f"ada{suffix}")
    _, other = await register(fault_client, f"bob{suffix}")
    source, target = await open_wallet(fault_client, own), await open_wallet(fault_client, other)
    await mine(fault_client, ada["id"], "100.00")

    def send(request: dict[str, Any]) -> Any:
        return fault_client.post("/api/wallets/transfer", json=request, headers=own)

    # The node now knows both wallets: the next transfer goes straight to a batch.
    assert (await send(body(source, target, "1.00"))).status_code == 201
    frozen_request = body(source, target, "2.00")
    with own_backends.frozen("postgres"):
        answer, answer_s = await timed(send(frozen_request))
        assert_unavailable(answer, "postgres")
        assert answer_s < TIMEOUT_S + MARGIN_S

    # Back by itself: the same request (its key) answers 201 once PostgreSQL is, and posts
    # once whether or not the frozen server ran the batch after the thaw.
    await until_status(lambda: send(frozen_request), 201, RETRY_S + TIMEOUT_S + 3)
    assert (await send(frozen_request)).status_code == 201  # a replay
    assert await balance(fault_client, source, own) == Decimal("97.00")
    assert await balance(fault_client, target, other) == Decimal("3.00")
