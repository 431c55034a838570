"""Archive write cost: the Mongo server's CPU per event `Archive.store` archives.

Run: `.venv/bin/python -m bench.archive_store [--events 50000] [--batch 500]`.

It starts the embedded SecantusDB on a temporary data dir, sets up the archive as a node
does at start (`open_documents`, `Archive.create_indexes`, `backfill_audience`), then
stores `--events` events in batches of `--batch` (the archiver's batch) and reads the
server process's CPU time (user + system, psutil) around the writes. Events are spread
like the ledger's: most concern one of 1,000 users, one in 20 is public, of a few types.
Then it times reads from the oldest (`Archive.read`, `limit=100`, median of `--repeat`) as
one user sees them: all its events, and only `system.alert` (by audience, the other types
dropped in Python). Prints one JSON line: the indexes, CPU ms per event, events/s, reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from azora_nexus.backends.mongo import EmbeddedMongo
from azora_nexus.backends.process import free_port
from azora_nexus.documents.client import open_documents
from azora_nexus.events.archive import Archive
from azora_nexus.events.envelope import Event
from azora_nexus.events.history import EventFilter
from azora_nexus.events.taxonomy import TypeSelector

TYPES = ("finance.transaction.completed", "finance.wallet.updated", "system.alert")
USERS = 1000
PUBLIC_EVERY = 20


def event(n: int, ms: int) -> Event:
    user_id = None if n % PUBLIC_EVERY == 0 else f"user-{n % USERS}"
    return Event(
        id=f"{ms}-{n}",
        type=TYPES[n % len(TYPES)],
        payload={"n": n, "amount": "12.50"},
        source="bench",
        timestamp_ms=ms,
        user_id=user_id,
    )


def server_cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def read_ms(archive: Archive, events_filter: EventFilter, repeat: int) -> float:
    """Median ms of one page of 100 from the oldest."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await archive.read(after=None, before=None, events_filter=events_filter, limit=100)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 2)


async def reads(archive: Archive, repeat: int) -> dict[str, float]:
    alerts = TypeSelector.parse(["system.alert"])
    return {
        "read_user_all_ms": await read_ms(archive, EventFilter(viewer="user-7"), repeat),
        "read_user_alerts_ms": await read_ms(
            archive, EventFilter(types=alerts, viewer="user-7"), repeat
        ),
        "read_admin_alerts_ms": await read_ms(archive, EventFilter(types=alerts), repeat),
    }


async def measure(url: str, pid: int, total: int, batch: int, repeat: int) -> dict[str, Any]:
    process = psutil.Process(pid)
    async with open_documents(url, timeout_s=10) as documents:
        archive = Archive(documents)
        await archive.create_indexes()
        await archive.backfill_audience()
        indexes = [dict(i["key"]) async for i in await documents.events.list_indexes()]
        ms = int(time.time() * 1000)
        cpu_before, started = server_cpu_s(process), time.perf_counter()
        for at in range(0, total, batch):
            await archive.store([event(n, ms + n // 2) for n in range(at, min(at + batch, total))])
        elapsed = time.perf_counter() - started
        cpu_s = server_cpu_s(process) - cpu_before
        assert await documents.events.count_documents({}) == total
        read = await reads(archive, repeat)
    return {
        "indexes": [list(key) for key in indexes],
        "events": total,
        "batch": batch,
        "server_cpu_ms_per_event": round(cpu_s * 1000 / total, 4),
        "events_per_s": round(total / elapsed),
        **read,
    }


async def run(total: int, batch: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="azora-archive-bench-") as root:
        server = EmbeddedMongo(Path(root) / "secantus", free_port())
        url = await server.start()
        try:
            pid = server.pid
            assert pid is not None
            return await measure(url, pid, total, batch, repeat)
        finally:
            await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500, help="events per store")
    parser.add_argument("--repeat", type=int, default=20, help="reads per case")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.events, args.batch, args.repeat))))


if __name__ == "__main__":
    main()
