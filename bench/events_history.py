"""History cost benchmark: `GET /events` for a user against an admin, over a large archive.

Run from the repo root:

    .venv/bin/python -m bench.events_history --events 100000
    .venv/bin/python -m bench.events_history --events 100000 --maxlen 10000   # mostly Mongo

It starts the embedded backends on a temporary data dir and appends `--events` events to
the stream exactly as a node publishes them (`EventStream.append`, many at a time: over
`POST /events` 100k take too long to set up): nearly all of them for 1,000 other users,
one in 200 public, and ten for the measured user spread evenly (so between two of its
events lie about 10,000 events it may not see). Then it starts `azora serve` on them, and
once the node's archiver has stored every event, it times `GET /events?limit=1` and
`?limit=100` (no `after`: from the oldest), as the user and as an admin, one request at a
time (median and slowest of `--repeat`), then 20 of each at once (wall time), and checks
the user got exactly its own and the public events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.backends.process import free_port
from azora_nexus.cache.client import create_redis
from azora_nexus.cli.node import migrated_backends
from azora_nexus.config import Settings
from azora_nexus.events.outbox import new_event
from azora_nexus.events.stream import EventStream
from bench.fanout.server import stop, wait_healthy

USER = "bench-user"
OTHERS = 1000
PUBLIC_EVERY = 200
OWN_EVENTS = 10
PARALLEL = 20
STREAM_CAP = 100_000  # AZORA_STREAM_MAXLEN's default


def body(seq: int, total: int) -> dict[str, Any]:
    """The `seq`-th event: the user's own every total/OWN_EVENTS, some public, else others'."""
    event: dict[str, Any] = {"payload": {"seq": seq}, "source": "bench"}
    if seq % (total // OWN_EVENTS) == total // OWN_EVENTS // 2:
        return event | {"type": "finance.transaction.completed", "userId": USER}
    if seq % PUBLIC_EVERY == 0:
        return event | {"type": "system.alert"}
    return event | {"type": "finance.transaction.completed", "userId": f"other-{seq % OTHERS}"}


async def publish_all(redis_url: str, total: int, concurrency: int, maxlen: int) -> None:
    """Every event on the stream (capped at `maxlen`, as the node caps it), `concurrency`
    appends in flight."""
    redis = create_redis(redis_url, timeout_s=30)
    stream = EventStream(redis, maxlen=maxlen)
    try:
        await stream.index_backlog()  # an empty stream: the audience index starts complete
        queue: asyncio.Queue[int] = asyncio.Queue()
        for seq in range(total):
            queue.put_nowait(seq)

        async def worker() -> None:
            while not queue.empty():
                spec = body(queue.get_nowait(), total)
                event = new_event(
                    spec["type"], spec["payload"], source="bench", user_id=spec.get("userId")
                )
                await stream.append(event)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await redis.aclose()


async def wait_archived(mongodb_uri: str, total: int, timeout_s: float) -> float:
    """Seconds until the archive holds `total` events (asked of MongoDB itself: the
    node's `/metrics` storage gauges cost SecantusDB a scan of the archive each)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri)
    started = time.monotonic()
    try:
        events = client.get_default_database()["events"]
        while (held := await events.estimated_document_count()) < total:
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"the archive holds {held} of {total}")
            await asyncio.sleep(2)
    finally:
        await client.close()
    return time.monotonic() - started


async def timed(http: httpx.AsyncClient, token: str, limit: int) -> tuple[float, int, list[Any]]:
    """Seconds, status and events of one `GET /events?limit=`."""
    started = time.perf_counter()
    response = await http.get(
        "/events", params={"limit": limit}, headers={"Authorization": f"Bearer {token}"}
    )
    elapsed = time.perf_counter() - started
    events = response.json()["events"] if response.status_code == 200 else []
    return elapsed, response.status_code, events


def summary(answers: list[tuple[float, int, list[Any]]]) -> dict[str, Any]:
    times = [t for t, status, _ in answers if status == 200]
    failed = sorted({status for _, status, _ in answers if status != 200})
    found: dict[str, Any] = {"ok": len(times), "failed": len(answers) - len(times)}
    if failed:
        found["failed_statuses"] = failed
    if times:
        found["median_ms"] = round(statistics.median(times) * 1000, 1)
        found["max_ms"] = round(max(times) * 1000, 1)
    return found


async def one_at_a_time(
    http: httpx.AsyncClient, token: str, limit: int, repeat: int
) -> dict[str, Any]:
    return summary([await timed(http, token, limit) for _ in range(repeat)])


async def all_at_once(http: httpx.AsyncClient, token: str, limit: int) -> dict[str, Any]:
    started = time.perf_counter()
    answers = await asyncio.gather(*(timed(http, token, limit) for _ in range(PARALLEL)))
    return summary(list(answers)) | {"wall_s": round(time.perf_counter() - started, 3)}


async def measure(url: str, secret: str, total: int, repeat: int, mongodb_uri: str) -> Any:
    admin = issue_token(secret, sub="bench-admin", role=Role.ADMIN)
    user = issue_token(secret, sub=USER, role=Role.USER)
    limits = httpx.Limits(max_connections=PARALLEL + 1)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        archive_wait_s = await wait_archived(mongodb_uri, total, timeout_s=1800)
        await asyncio.sleep(10)  # the archiver's last batch settles
        _, _, page = await timed(http, user, 100)
        ids = [tuple(map(int, e["id"].split("-"))) for e in page]
        result: dict[str, Any] = {
            "events": total,
            "archive_caught_up_s": round(archive_wait_s, 1),
            # 100 of its own and the public ones, in id order, nobody else's.
            "user_page_correct": len(page) == 100
            and ids == sorted(set(ids))
            and all(e.get("userId") in (None, USER) for e in page),
        }
        for who, token in (("user", user), ("admin", admin)):
            for limit in (1, 100):
                result[f"{who}_limit{limit}"] = await one_at_a_time(http, token, limit, repeat)
                result[f"{who}_limit{limit}_x{PARALLEL}_s"] = await all_at_once(http, token, limit)
    return result


@contextmanager
def serving(urls: Settings, maxlen: int, log: Path) -> Iterator[tuple[str, str]]:
    """`azora serve` on the backends `urls` names; its base URL and JWT secret."""
    port = free_port()
    secret = secrets.token_urlsafe(48)
    env = os.environ | {
        "DATABASE_URL": urls.database_url or "",
        "REDIS_URL": urls.redis_url or "",
        "MONGODB_URI": urls.mongodb_uri or "",
        "AZORA_DATA_DIR": str(urls.data_dir),
        "AZORA_JWT_SECRET": secret,
        "AZORA_STREAM_MAXLEN": str(maxlen),
        "AZORA_HOST": "127.0.0.1",
        "AZORA_LOG_LEVEL": "WARNING",
    }
    azora = Path(sys.executable).with_name("azora")
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(azora), "serve", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, timeout_s=180)
        yield url, secret
    finally:
        stop(process)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="azora-bench-"))
    data_dir.chmod(0o755)  # embedded PostgreSQL runs as its own user when we are root
    try:
        os.environ["AZORA_DATA_DIR"] = str(data_dir)  # Settings reads it by this name only
        base = Settings()
        async with migrated_backends(base) as urls:
            started = time.perf_counter()
            assert urls.redis_url is not None
            await publish_all(
                urls.redis_url, args.events, args.concurrency, args.maxlen or STREAM_CAP
            )
            publish_s = time.perf_counter() - started
            with serving(urls, args.maxlen or STREAM_CAP, Path(args.log)) as (url, secret):
                assert urls.mongodb_uri is not None
                result = await measure(url, secret, args.events, args.repeat, urls.mongodb_uri)
        return {"publish_s": round(publish_s, 1), **result}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.events_history")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--maxlen", type=int, default=0, help="AZORA_STREAM_MAXLEN (0: default)")
    parser.add_argument("--concurrency", type=int, default=64, help="appends in flight")
    parser.add_argument("--repeat", type=int, default=20, help="sequential requests per case")
    parser.add_argument("--log", default="/tmp/azora-events-history.log", help="node log copy")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    result["stream_maxlen"] = args.maxlen or STREAM_CAP
    print(json.dumps(result))


if __name__ == "__main__":
    main()
