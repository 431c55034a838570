"""Soak: storage stays flat under a steady load once retention windows have passed.

Run: `.venv/bin/python -m bench.soak [--minutes 10] [--rate 20] [--retention-s 120]`.
Starts `azora up` on a fresh data dir (127.0.0.1 only) with every retention short
(outbox, archive and WAL windows of `--retention-s`, a base backup every half window, a
stream cap of 2000), then for `--minutes` drives, every second, `--rate` wallet transfers
(domain writes: a ledger transaction and two outbox events each) and `--rate` events
published over HTTP. Every `--sample-s` it reads each store's size from `/metrics`
(`azora_storage_bytes`, `azora_storage_items`). At the end it checks that the ledger is
exact (the two wallets hold what was minted, each transfer counted once) and that every
event published inside the archive's window is still readable through `GET /events`.
Writes bench/results/soak.json and bench/results/soak.png (one line per store).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from azora_nexus.auth.tokens import Role, issue_token

RESULTS = Path(__file__).with_name("results")
SECRET = "soak-secret-that-is-long-enough-for-hs256-signing"
MINTED = Decimal("1000000.00")
AMOUNT = Decimal("0.01")
STORES = ("outbox", "wal_archive", "stream", "archive")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def node_env(data_dir: Path, port: int, retention_s: float) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MONGODB_URI")
    }
    return env | {
        "AZORA_DATA_DIR": str(data_dir),
        "AZORA_PORT": str(port),
        "AZORA_JWT_SECRET": SECRET,
        "AZORA_OUTBOX_RETENTION_S": str(retention_s),
        "AZORA_ARCHIVE_RETENTION_S": str(retention_s),
        "AZORA_WAL_RETENTION_S": str(retention_s),
        "AZORA_BASE_BACKUP_INTERVAL_S": str(retention_s / 2),
        "AZORA_STREAM_MAXLEN": "2000",
        "AZORA_LOG_LEVEL": "WARNING",
    }


async def wait_healthy(http: httpx.AsyncClient, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise SystemExit(f"azora up exited with {process.returncode}")
        try:
            if (await http.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)
    raise SystemExit("azora up did not become healthy in 120 s")


async def sample(http: httpx.AsyncClient) -> dict[str, dict[str, float]]:
    text = (await http.get("/metrics")).text
    found: dict[str, dict[str, float]] = {"bytes": {}, "items": {}}
    kinds = {"azora_storage_bytes": "bytes", "azora_storage_items": "items"}
    for family in text_string_to_metric_families(text):
        if family.name in kinds:
            for s in family.samples:
                found[kinds[family.name]][s.labels["store"]] = s.value
    return found


class Load:
    """Two users' wallets and an admin token; counts what was accepted."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.admin = {"Authorization": f"Bearer {issue_token(SECRET, sub='soak', role=Role.ADMIN)}"}
        self.users: list[dict[str, str]] = []
        self.wallets: list[str] = []
        self.transfers = [0, 0]  # accepted, a->b and b->a
        self.published: list[tuple[str, float]] = []  # (id, when)

    async def setup(self) -> None:
        for name in ("alice", "bob"):
            body = {"email": f"{name}@soak.test", "username": name, "password": "soak passphrase"}
            reply = (await self.http.post("/api/auth/register", json=body)).json()
            headers = {"Authorization": f"Bearer {reply['token']}"}
            wallet = (
                await self.http.post("/api/wallets", json={"currency": "AZR"}, headers=headers)
            ).json()
            self.users.append(headers)
            self.wallets.append(wallet["id"])
            reward = {"userId": reply["user"]["id"], "currency": "AZR", "amount": str(MINTED / 2)}
            response = await self.http.post("/api/rewards/mining", json=reward, headers=self.admin)
            assert response.status_code in (200, 201), response.text

    async def transfer(self, n: int) -> None:
        way = n % 2
        body = {
            "fromWalletId": self.wallets[way],
            "toWalletId": self.wallets[1 - way],
            "amount": str(AMOUNT),
            "idempotencyKey": str(uuid.uuid4()),
        }
        response = await self.http.post("/api/wallets/transfer", json=body, headers=self.users[way])
        if response.status_code == 201:
            self.transfers[way] += 1

    async def publish(self, n: int) -> None:
        body = {"type": "system.alert", "payload": {"n": n}, "source": "soak"}
        response = await self.http.post("/events", json=body, headers=self.admin)
        if response.status_code == 202 and response.json().get("id"):
            self.published.append((response.json()["id"], time.time()))

    async def balances(self) -> list[Decimal]:
        found = []
        for headers, wallet in zip(self.users, self.wallets, strict=True):
            found.append(
                Decimal(
                    (await self.http.get(f"/api/wallets/{wallet}", headers=headers)).json()[
                        "balance"
                    ]
                )
            )
        return found

    async def history(self) -> set[str]:
        seen: set[str] = set()
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"type": "system.alert", "limit": 1000}
            if after is not None:
                params["after"] = after
            events = (await self.http.get("/events", params=params, headers=self.admin)).json()[
                "events"
            ]
            seen.update(e["id"] for e in events)
            if len(events) < 1000:
                return seen
            after = events[-1]["id"]


async def drive(args: argparse.Namespace, http: httpx.AsyncClient) -> dict[str, Any]:
    load = Load(http)
    await load.setup()
    series: list[dict[str, Any]] = []
    started = time.time()
    next_sample = started
    n = 0
    while time.time() - started < args.minutes * 60:
        tick = time.monotonic()
        await asyncio.gather(
            *(load.transfer(n + i) for i in range(args.rate)),
            *(load.publish(n + i) for i in range(args.rate)),
        )
        n += args.rate
        if time.time() >= next_sample:
            series.append({"t_s": round(time.time() - started, 1), **await sample(http)})
            next_sample += args.sample_s
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    await asyncio.sleep(5)  # the last events reach the archive
    balances = await load.balances()
    net = (load.transfers[0] - load.transfers[1]) * AMOUNT
    exact = sum(balances) == MINTED and balances[0] == MINTED / 2 - net
    # Clear of the sweep in progress at the window's edge.
    window_start = time.time() - args.retention_s + min(30.0, args.retention_s / 4)
    recent = {i for i, at in load.published if at >= window_start}
    missing = recent - await load.history()
    return {
        "minutes": args.minutes,
        "rate_per_s": {"transfers": args.rate, "published": args.rate},
        "retention_s": args.retention_s,
        "transfers": sum(load.transfers),
        "published": len(load.published),
        "ledger_exact": exact,
        "balances": [str(b) for b in balances],
        "recent_events_checked": len(recent),
        "recent_events_missing": len(missing),
        "series": series,
    }


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4.5))
    times = [point["t_s"] / 60 for point in result["series"]]
    for store in STORES:
        values = [point["bytes"].get(store, 0) / 1e6 for point in result["series"]]
        axis.plot(times, values, label=store)
    axis.axvline(result["retention_s"] / 60, color="grey", linestyle=":", label="first window")
    axis.set_xlabel("minutes")
    axis.set_ylabel("MB on disk")
    axis.set_title(
        f"soak: {result['rate_per_s']['transfers']} transfers/s + "
        f"{result['rate_per_s']['published']} events/s, retention {result['retention_s']:.0f} s"
    )
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="azora-soak-") as name:
        data_dir = Path(name)
        os.chmod(data_dir, 0o755)  # the embedded PostgreSQL runs as its own user
        port = free_port()
        azora = Path(sys.executable).with_name("azora")
        process = await asyncio.create_subprocess_exec(
            str(azora),
            "up",
            env=node_env(data_dir, port, args.retention_s),
            stdout=asyncio.subprocess.DEVNULL,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                await wait_healthy(http, process)
                result = await drive(args, http)
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
    chart(result, RESULTS / "soak.png")
    last = result["series"][-1]["bytes"]
    print(json.dumps({k: v for k, v in result.items() if k != "series"}, indent=1))
    print("last sample (bytes):", last)
    ok = result["ledger_exact"] and result["recent_events_missing"] == 0
    return 0 if ok else 1


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=20, help="transfers/s and events/s each")
    parser.add_argument("--retention-s", type=float, default=120.0)
    parser.add_argument("--sample-s", type=float, default=5.0)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
