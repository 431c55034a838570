"""Replay benchmark: how long a subscriber that missed N events takes to get them all back.

Run from the repo root:

    .venv/bin/python -m bench.events_replay --missed 10000
    .venv/bin/python -m bench.events_replay --missed 10000 --maxlen 1000   # mostly from Mongo

It starts `azora up` on a temporary data dir, publishes one marker event and then N
events over `POST /events`, connects one Socket.IO client, subscribes with
`after` = the marker's id, and times the subscribe until the N-th replayed event arrives.
It checks that the replay holds every event once, in order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx

from azora_nexus.auth.tokens import Role, issue_token
from bench.fanout.server import started_nexus
from bench.sio_client import SioClient

EVENT_TYPE = "system.alert"


async def publish_all(url: str, token: str, count: int, concurrency: int) -> list[str]:
    """POST `count` events, `concurrency` at a time; their ids in publication order."""
    headers = {"Authorization": f"Bearer {token}"}
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:

        async def post(seq: int) -> str:
            body = {"type": EVENT_TYPE, "payload": {"seq": seq}, "source": "bench"}
            response = await http.post("/events", json=body)
            response.raise_for_status()
            return str(response.json()["id"])

        for start in range(0, count, concurrency):
            batch = range(start, min(start + concurrency, count))
            ids += await asyncio.gather(*(post(seq) for seq in batch))
    return ids


def order(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


async def measure(url: str, secret: str, missed: int, concurrency: int) -> dict[str, Any]:
    admin = issue_token(secret, sub="bench", role=Role.ADMIN)
    [marker] = await publish_all(url, admin, 1, 1)
    started = time.perf_counter()
    published = await publish_all(url, admin, missed, concurrency)
    publish_s = time.perf_counter() - started
    expected = sorted(published, key=order)
    received: list[str] = []
    done = asyncio.Event()

    def on_event(name: str, data: Any, received_ns: int) -> None:
        received.append(data["id"])
        if len(received) >= missed:
            done.set()

    user = issue_token(secret, sub="bench-user", role=Role.USER)
    client = await SioClient.connect(url, {"token": user}, on_event)
    try:
        started = time.perf_counter()
        ack = await client.call("subscribe", {"types": [EVENT_TYPE], "after": marker})
        ack_s = time.perf_counter() - started
        await asyncio.wait_for(done.wait(), 120)
        replay_s = time.perf_counter() - started
    finally:
        await client.close()
    return {
        "missed": missed,
        "ack": ack,
        "ack_ms": round(ack_s * 1000, 1),
        "replay_s": round(replay_s, 3),
        "events_per_s": round(missed / replay_s),
        "in_order_once": received == expected,
        "publish_s": round(publish_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.events_replay")
    parser.add_argument("--missed", type=int, default=10_000)
    parser.add_argument("--maxlen", type=int, default=0, help="AZORA_STREAM_MAXLEN (0: default)")
    parser.add_argument("--concurrency", type=int, default=50, help="POSTs in flight")
    args = parser.parse_args()
    env = {"AZORA_STREAM_MAXLEN": str(args.maxlen)} if args.maxlen else {}
    with started_nexus(up_args=[], extra_env=env) as server:
        result = asyncio.run(measure(server.url, server.secret, args.missed, args.concurrency))
    result["stream_maxlen"] = args.maxlen or 100_000
    print(json.dumps(result))


if __name__ == "__main__":
    main()
