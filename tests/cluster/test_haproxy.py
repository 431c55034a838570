"""Three `azora serve` nodes behind HAProxy (deploy/haproxy/haproxy.cfg) on Debian's PostgreSQL 15
and Redis 7 and the embedded Mongo server: kill -9 of one node under load.

Every stock `socket.io-client` (websocket, round robin; long polling, sticky by sid) comes back
on another node with every event once and in order, and writes through the balancer keep
succeeding. The figures are printed as one JSON line (README, "Scaling past one machine").
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from azora_nexus.auth.tokens import Role, issue_token
from tests.cluster.cluster import Cluster, run_cluster
from tests.cluster.js_clients import JsClients
from tests.cluster.load import Writes, publish_events, transfer_back_and_forth, until_accepted
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

SECRET = "cluster-test-secret-long-enough-for-hs256"
TYPES = ["system.alert", "finance.transaction.completed"]
CLIENTS_PER_TRANSPORT = 12
FUNDS = Decimal("100")
SENTINEL = {"sentinel": True}


def bearer(role: Role, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub=sub, role=role)}"}


@pytest.fixture
async def cluster(own_data_dir: Path) -> AsyncIterator[Cluster]:
    async with run_cluster(own_data_dir, SECRET) as running:
        yield running


async def two_funded_wallets(http: httpx.AsyncClient) -> tuple[str, str]:
    """Two users' AZR wallets holding FUNDS each, made through the balancer."""
    wallets = []
    for name in ("ada", "bob"):
        registered = await http.post(
            "/api/auth/register",
            json={"email": f"{name}@example.com", "username": name, "password": f"{name}-pw-123"},
        )
        assert registered.status_code == 201, registered.text
        user = registered.json()
        auth = {"Authorization": f"Bearer {user['token']}"}
        wallet = await http.post("/api/wallets", json={"currency": "AZR"}, headers=auth)
        assert wallet.status_code == 201, wallet.text
        mined = await http.post(
            "/api/rewards/mining",
            json={"userId": user["user"]["id"], "currency": "AZR", "amount": str(FUNDS)},
        )
        assert mined.status_code == 201, mined.text
        wallets.append(wallet.json()["id"])
    return wallets[0], wallets[1]


async def sockets_per_node(cluster: Cluster) -> list[int]:
    counts = []
    async with httpx.AsyncClient(timeout=5) as http:
        for node in cluster.nodes:
            text = (await http.get(f"{node.url}/metrics")).text
            found = re.search(r"^azora_sockets_connected(?:\{[^}]*\})? (\S+)$", text, re.M)
            counts.append(int(float(found.group(1))) if found else 0)
    return counts


async def history(http: httpx.AsyncClient, after: str) -> list[dict[str, Any]]:
    """Every event after `after` of the clients' types, oldest first."""
    events: list[dict[str, Any]] = []
    while True:
        page = await http.get("/events", params={"after": after, "limit": 1000})
        assert page.status_code == 200, page.text
        found = page.json()["events"]
        if not found:
            return [e for e in events if e["type"] in TYPES]
        events.extend(found)
        after = found[-1]["id"]


async def test_kill_9_of_a_node_under_load_loses_no_event_and_no_write(
    cluster: Cluster,
) -> None:
    admin = bearer(Role.ADMIN, "operator")
    async with httpx.AsyncClient(base_url=cluster.url, headers=admin, timeout=10) as http:
        wallets = await two_funded_wallets(http)
        # The clients are admins (they see the transfers' private events), each its own user.
        specs = [
            (issue_token(SECRET, sub=f"watcher-{transport}-{i}", role=Role.ADMIN), transport)
            for transport in ("websocket", "polling")
            for i in range(CLIENTS_PER_TRANSPORT)
        ]
        clients = await JsClients.start(cluster.url, TYPES, specs)
        try:
            await clients.wait_for("ack", len(specs), timeout_s=30)
            assert all(r["ack"]["ok"] for r in clients.of_kind("ack"))
            figures = await kill_a_node_under_load(cluster, http, clients, wallets)
        finally:
            await clients.close()
    print("cluster figures:", json.dumps(figures))


async def kill_a_node_under_load(
    cluster: Cluster, http: httpx.AsyncClient, clients: JsClients, wallets: tuple[str, str]
) -> dict[str, Any]:
    start = await until_accepted(
        http, Writes(), 202, "/events", {"type": "system.alert", "payload": {}, "source": "t"}
    )
    events, transfers = Writes(), Writes()
    stop = asyncio.Event()
    load = [
        asyncio.create_task(publish_events(http, events, stop, every_s=0.02)),
        asyncio.create_task(transfer_back_and_forth(http, transfers, stop, wallets)),
    ]
    try:
        await eventually(lambda: _at_least(events, 40), timeout_s=20)
        # Every socket stayed where it connected so far (polling included: sticky by sid).
        assert clients.of_kind("disconnected") == clients.of_kind("connect_error") == []
        per_node = await sockets_per_node(cluster)
        victim = max(range(len(per_node)), key=per_node.__getitem__)
        assert per_node[victim] > 0, per_node
        killed_at = time.time()
        cluster.nodes[victim].kill()
        await cluster.nodes[victim].process.wait()
        events_at_kill = events.done
        # Every socket of the dead node reconnects (elsewhere) while the load goes on.
        await eventually(lambda: _moved_and_back(clients, per_node[victim]), timeout_s=30)
        await eventually(lambda: _at_least(events, events_at_kill + 50), timeout_s=20)
    finally:
        stop.set()
        await asyncio.gather(*load)
    # Transfers' events come through the outbox relay: all in before the sentinel goes out.
    await eventually(lambda: _relayed(http, start["id"], 2 * transfers.done), timeout_s=20)
    sentinel = await until_accepted(
        http, Writes(), 202, "/events", {"type": "system.alert", "payload": SENTINEL, "source": "t"}
    )
    await clients.wait_for("sentinel", CLIENTS_PER_TRANSPORT * 2, timeout_s=30)
    expected = [start["id"], *(e["id"] for e in await history(http, start["id"]))]
    assert expected[-1] == sentinel["id"]
    published = {r["id"] for r in events.results}
    assert published <= set(expected), "an accepted POST /events is missing from history"
    report = await clients.report()
    lost = sum(len(set(expected) - set(c["ids"])) for c in report)
    duplicated = sum(len(c["ids"]) - len(set(c["ids"])) for c in report)
    for client in report:
        assert client["ids"] == expected, f"client {client['index']}"
    await check_ledger(http, wallets, transfers.done)
    return figures(
        report=report,
        per_node=per_node,
        victim=victim,
        killed_at=killed_at,
        expected=expected,
        events=events,
        transfers=transfers,
        lost=lost,
        duplicated=duplicated,
    )


async def check_ledger(http: httpx.AsyncClient, wallets: tuple[str, str], done: int) -> None:
    """Each transfer posted once: A paid ceil(n/2), got floor(n/2) back."""
    balances = []
    for wallet in wallets:
        response = await http.get(f"/api/wallets/{wallet}")
        assert response.status_code == 200, response.text
        balances.append(Decimal(response.json()["balance"]))
    moved = Decimal((done + 1) // 2 - done // 2)
    assert balances == [FUNDS - moved, FUNDS + moved]


def figures(
    *,
    report: list[dict[str, Any]],
    per_node: list[int],
    victim: int,
    killed_at: float,
    expected: list[str],
    events: Writes,
    transfers: Writes,
    lost: int,
    duplicated: int,
) -> dict[str, Any]:
    moved = [c for c in report if c["disconnects"]]
    # Only the dead node's sockets moved; the others were not touched.
    assert len(moved) == per_node[victim], (len(moved), per_node)
    # Each came back through connection state recovery, never a fresh connect.
    for client in moved:
        assert [c["recovered"] for c in client["connects"][1:]] == [True] * (
            len(client["connects"]) - 1
        ), client["connects"]
    back_s = [c["connects"][-1]["t"] / 1000 - killed_at for c in moved]
    first_event_s = [
        c["firstAfterReconnect"] / 1000 - killed_at for c in moved if c["firstAfterReconnect"]
    ]
    return {
        "clients": len(report),
        "sockets_per_node_before_kill": per_node,
        "node_killed": victim + 1,
        "clients_moved": len(moved),
        "polling_clients_moved": sum(c["index"] >= CLIENTS_PER_TRANSPORT for c in moved),
        "events_per_client": len(expected),
        "events_lost": lost,
        "events_duplicated": duplicated,
        "reconnected_after_kill_s": {"median": statistics.median(back_s), "max": max(back_s)},
        "first_event_after_kill_s": {"max": max(first_event_s, default=None)},
        "post_events": {
            "accepted": events.done,
            "failed_attempts_retried": events.failed_attempts,
            "slowest_s": round(events.slowest_s, 3),
        },
        "transfers": {
            "posted": transfers.done,
            "failed_attempts_retried": transfers.failed_attempts,
            "slowest_s": round(transfers.slowest_s, 3),
        },
    }


async def _at_least(writes: Writes, count: int) -> bool:
    return writes.done >= count


async def _relayed(http: httpx.AsyncClient, after: str, transfer_events: int) -> bool:
    found = await history(http, after)
    relayed = [e for e in found if e["type"] == "finance.transaction.completed"]
    return len(relayed) >= transfer_events


async def _moved_and_back(clients: JsClients, count: int) -> bool:
    """`count` sockets lost their connection, and each is connected again."""
    last: dict[int, str] = {}
    for record in clients.records:
        if record["kind"] in ("connected", "disconnected"):
            last[record["client"]] = record["kind"]
    moved = {r["client"] for r in clients.of_kind("disconnected")}
    return len(moved) >= count and all(last[c] == "connected" for c in moved)
