"""The client processes of a run, driven from the parent's event loop over pipes."""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from bench.fanout.clients import ClientPlan, run_client_process

Reply = tuple[str, Any]


def plans_for(
    *,
    url: str,
    secret: str,
    clients: int,
    procs: int,
    event_type: str,
    events: int,
    concurrency: int,
    timeout_s: float,
) -> list[ClientPlan]:
    """`clients` spread as evenly as possible over `procs` processes."""
    procs = max(1, min(procs, clients))
    plans, first = [], 0
    for number in range(procs):
        count = clients // procs + (1 if number < clients % procs else 0)
        plans.append(
            ClientPlan(url, secret, first, count, event_type, events, concurrency, timeout_s)
        )
        first += count
    return plans


class ClientPool:
    """Starts one process per plan; `ask` sends a command to all and gathers the replies."""

    def __init__(self, plans: list[ClientPlan]) -> None:
        self.plans = plans
        self.processes: list[BaseProcess] = []
        self.pipes: list[Connection] = []
        self.inboxes: list[asyncio.Queue[Reply]] = []
        self.pids: list[int] = []

    async def __aenter__(self) -> ClientPool:
        context = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        for plan in self.plans:
            ours, theirs = context.Pipe()
            process = context.Process(target=run_client_process, args=(plan, theirs), daemon=True)
            process.start()
            theirs.close()
            inbox: asyncio.Queue[Reply] = asyncio.Queue()
            loop.add_reader(ours.fileno(), self._receive, ours, inbox)
            self.processes.append(process)
            self.pipes.append(ours)
            self.inboxes.append(inbox)
        self.pids = [pid for _, pid in await self._gather("ready", timeout_s=60)]
        return self

    def _receive(self, pipe: Connection, inbox: asyncio.Queue[Reply]) -> None:
        try:
            inbox.put_nowait(pipe.recv())
        except (EOFError, OSError) as exc:
            asyncio.get_running_loop().remove_reader(pipe.fileno())
            inbox.put_nowait(("dead", repr(exc)))

    async def _gather(self, kind: str, timeout_s: float) -> list[Reply]:
        async with asyncio.timeout(timeout_s):
            replies = [await inbox.get() for inbox in self.inboxes]
        for number, (got, body) in enumerate(replies):
            if got != kind:
                raise RuntimeError(f"client process {number} answered {got!r}: {body!r}")
        return replies

    async def ask(self, command: str, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Send `command` to every process and return their answers, in process order."""
        for pipe in self.pipes:
            pipe.send(command)
        kind = {"connect": "connected", "finish": "result"}.get(command, command)
        return [body for _, body in await self._gather(kind, timeout_s)]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        for pipe in self.pipes:
            loop.remove_reader(pipe.fileno())
            pipe.close()
        for process in self.processes:
            await asyncio.to_thread(process.join, 15)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, 5)
