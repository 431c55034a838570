"""Writes through the balancer while a node dies: `POST /events` and wallet transfers, each
retried until it succeeds (a transfer with the same idempotency key), counted."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRY_AFTER_S = 0.05
GIVE_UP_AFTER_S = 10.0


@dataclass
class Writes:
    """What a writer did: successes, failed attempts (retried), the slowest success."""

    done: int = 0
    failed_attempts: int = 0
    slowest_s: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)


async def until_accepted(
    http: httpx.AsyncClient, writes: Writes, status: int, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST until the answer is `status`; a 5xx or a cut connection is retried as it is."""
    started = time.monotonic()
    while True:
        try:
            response = await http.post(path, json=body)
            if response.status_code == status:
                break
            assert response.status_code >= 500, f"{path}: {response.status_code} {response.text}"
        except httpx.TransportError:
            pass
        writes.failed_attempts += 1
        assert time.monotonic() - started < GIVE_UP_AFTER_S, f"{path} kept failing"
        await asyncio.sleep(RETRY_AFTER_S)
    writes.slowest_s = max(writes.slowest_s, time.monotonic() - started)
    writes.done += 1
    result: dict[str, Any] = response.json()
    writes.results.append(result)
    return result


async def publish_events(
    http: httpx.AsyncClient, writes: Writes, stop: asyncio.Event, every_s: float
) -> None:
    """`system.alert` events numbered from 0 until `stop`."""
    while not stop.is_set():
        body = {"type": "system.alert", "payload": {"seq": writes.done}, "source": "cluster"}
        await until_accepted(http, writes, 202, "/events", body)
        await asyncio.sleep(every_s)


async def transfer_back_and_forth(
    http: httpx.AsyncClient, writes: Writes, stop: asyncio.Event, wallets: tuple[str, str]
) -> None:
    """1.00 AZR from one wallet to the other and back until `stop`; one key per transfer."""
    while not stop.is_set():
        source, target = wallets if writes.done % 2 == 0 else wallets[::-1]
        body = {
            "fromWalletId": source,
            "toWalletId": target,
            "amount": "1.00",
            "idempotencyKey": str(uuid.uuid4()),
        }
        await until_accepted(http, writes, 201, "/api/wallets/transfer", body)
