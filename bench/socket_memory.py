"""What one connected socket costs the server, and where: `python -m bench.socket_memory`.

One node runs in this process on embedded backends, with tracemalloc on from the moment it
serves; client processes (the fan-out bench's) connect N websocket subscribers and hold
them. Printed, and written to bench/results/socket-memory.json: the Python heap grown per
socket, by module and by allocation line. (RSS per socket comes from `bench.fanout`, which
runs without tracemalloc: tracing skews RSS.)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import uvloop

from azora_nexus.app import create_app
from azora_nexus.backends.process import free_port
from azora_nexus.cli.node import NodeServer, migrated_backends, node_config
from azora_nexus.config import Settings
from bench.fanout.pool import ClientPool, plans_for
from bench.fanout.server import wait_healthy

RESULTS = Path(__file__).resolve().parent / "results"


def settled() -> tracemalloc.Snapshot:
    """A heap snapshot after a full collection."""
    gc.collect()
    return tracemalloc.take_snapshot()


def per_socket(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, key: str, sockets: int, top: int
) -> list[dict[str, Any]]:
    rows = after.compare_to(before, key)
    return [
        {"where": str(stat.traceback[0]), "bytes": round(stat.size_diff / sockets)}
        for stat in rows[:top]
        if stat.size_diff > 0
    ]


async def measure(sockets: int, procs: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="azora-memory-"))
    data_dir.chmod(0o755)  # embedded PostgreSQL runs as its own user
    secret = secrets.token_urlsafe(32)
    settings = Settings(AZORA_DATA_DIR=data_dir, AZORA_PORT=free_port(), AZORA_JWT_SECRET=secret)
    async with migrated_backends(settings) as node:
        server = NodeServer(node_config(create_app(node), node))
        serving = asyncio.create_task(server.serve())
        url = f"http://127.0.0.1:{node.port}"
        await asyncio.to_thread(wait_healthy, url, None, 60)
        plans = plans_for(
            url=url, secret=secret, clients=sockets, procs=procs,
            event_type="marketplace.job.posted", events=0, concurrency=100, timeout_s=30,
        )  # fmt: skip
        tracemalloc.start(1)
        try:
            async with ClientPool(plans) as pool:
                await asyncio.sleep(1)
                heap_before = settled()
                connected = sum(r["connected"] for r in await pool.ask("connect", 120))
                await asyncio.sleep(2)
                heap_after = settled()
                await pool.ask("finish", 60)
        finally:
            tracemalloc.stop()
            server.should_exit = True
            await serving
    heap = sum(s.size_diff for s in heap_after.compare_to(heap_before, "filename"))
    return {
        "sockets": connected,
        "python_heap_bytes_per_socket": round(heap / connected),
        "by_module": per_socket(heap_before, heap_after, "filename", connected, 15),
        "by_line": per_socket(heap_before, heap_after, "lineno", connected, 25),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    args = parser.parse_args()
    result = uvloop.run(measure(args.sockets, args.procs))
    print(
        f"{result['sockets']} sockets: "
        f"{result['python_heap_bytes_per_socket'] / 1024:.1f} KB of Python heap per socket"
    )
    for title in ("by_module", "by_line"):
        print(f"\n{title.replace('_', ' ')} (bytes per socket):")
        for row in result[title]:
            print(f"  {row['bytes']:>7,}  {row['where']}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "socket-memory.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
