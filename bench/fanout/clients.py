"""A client process: connects its share of sockets, subscribes each, and counts deliveries.

The parent drives it over a pipe with three commands: `connect`, `status` and `finish`.
Tokens are minted before `connect` so that the timed connect phase holds only the protocol.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

import uvloop

from azora_nexus.auth.tokens import Role, issue_token
from bench.fanout.histogram import Histogram
from bench.fanout.tally import Tally
from bench.sio_client import SioClient


@dataclass(frozen=True)
class ClientPlan:
    """What one client process does: which clients, where, subscribed to what."""

    url: str
    secret: str
    first: int  # the number of this process's first client, for distinct user ids
    count: int
    event_type: str
    events: int  # measured events the parent will publish
    concurrency: int  # handshakes in flight at once in this process
    timeout_s: float


def run_client_process(plan: ClientPlan, conn: Connection) -> None:
    """Entry point of a client process: obey the parent's commands until `finish`."""
    uvloop.run(ClientProcess(plan, conn).serve())


class ClientProcess:
    """The sockets of one process and their counters."""

    def __init__(self, plan: ClientPlan, conn: Connection) -> None:
        self.plan = plan
        self.conn = conn
        self.tally = Tally(plan.count, plan.events)
        self.clients: list[SioClient] = []
        self.tokens = [
            issue_token(plan.secret, sub=f"bench-{plan.first + i}", role=Role.USER, ttl_s=3600)
            for i in range(plan.count)
        ]
        self.connect_time = Histogram()
        self.errors: Counter[str] = Counter()

    async def serve(self) -> None:
        commands: asyncio.Queue[str] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        loop.add_reader(self.conn.fileno(), lambda: commands.put_nowait(self.conn.recv()))
        self.conn.send(("ready", os.getpid()))
        while True:
            command = await commands.get()
            if command == "connect":
                self.conn.send(("connected", await self.connect_all()))
            elif command == "status":
                self.conn.send(("status", self.status()))
            elif command == "finish":
                self.conn.send(("result", self.result()))
                loop.remove_reader(self.conn.fileno())
                await self.close_all()
                return

    async def connect_all(self) -> dict[str, Any]:
        """Connect and subscribe every client, `concurrency` handshakes at a time."""
        gate = asyncio.Semaphore(self.plan.concurrency)
        started = time.time()
        await asyncio.gather(*(self.connect_one(i, gate) for i in range(self.plan.count)))
        return {
            "started": started,
            "finished": time.time(),
            "connected": len(self.clients),
            "failed": sum(self.errors.values()),
            "errors": dict(self.errors.most_common(5)),
            "latency": self.connect_time.to_wire(),
        }

    async def connect_one(self, index: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                client = await SioClient.connect(
                    self.plan.url,
                    {"token": self.tokens[index]},
                    partial(self.tally.record, index),
                    timeout_s=self.plan.timeout_s,
                )
            except Exception as exc:
                self.errors[f"connect: {type(exc).__name__}: {exc}"[:160]] += 1
                return
            try:
                ack = await client.call(
                    "subscribe", {"types": [self.plan.event_type]}, timeout_s=self.plan.timeout_s
                )
            except Exception as exc:
                self.errors[f"subscribe: {type(exc).__name__}: {exc}"[:160]] += 1
                await client.close()
                return
            if not (isinstance(ack, dict) and ack.get("ok") is True):
                self.errors[f"subscribe refused: {ack!r}"[:160]] += 1
                await client.close()
                return
            self.connect_time.record(round((time.perf_counter() - started) * 1e6))
            self.clients.append(client)

    def status(self) -> dict[str, Any]:
        return {
            "deliveries": self.tally.deliveries,
            "warmup": self.tally.warmup,
            "last_receive_ns": self.tally.last_receive_ns,
            "open": sum(1 for c in self.clients if c.is_open),
        }

    def result(self) -> dict[str, Any]:
        cpu = os.times()
        return {
            **self.tally.to_wire(),
            "open": sum(1 for c in self.clients if c.is_open),
            "cpu_s": cpu.user + cpu.system,
        }

    async def close_all(self) -> None:
        async with asyncio.timeout(10):
            await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)
