"""The parent of several workers: starts them, starts a new one when one dies, stops them.

Each worker is `python -m azora_nexus worker`, a whole Nexus node (its own event loop,
pools and stream tailer) serving the connections the parent hands it over its end of a
Unix socket pair; it says `ready` on that pair once it serves.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

from prometheus_client.multiprocess import mark_process_dead

from azora_nexus.errors import BadRequest
from azora_nexus.metrics import MULTIPROCESS_DIR
from azora_nexus.workers.routing import Channel, Workers

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 60.0
RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 10.0


class Supervisor:
    """`count` workers with `env`, their channels in `workers` while they are ready."""

    def __init__(self, count: int, env: Mapping[str, str]) -> None:
        self.count = count
        self.env = dict(env)
        self.workers = Workers()
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = False
        self._watchers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start every worker; if one cannot start, stop the others and say why."""
        results = await asyncio.gather(
            *(self._start(index) for index in range(self.count)), return_exceptions=True
        )
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await self.stop()
            raise failure

    async def _start(self, index: int) -> None:
        parent_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process: asyncio.subprocess.Process | None = None
        try:
            with worker_end:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "azora_nexus",
                    "worker",
                    "--index",
                    str(index),
                    "--channel-fd",
                    str(worker_end.fileno()),
                    pass_fds=(worker_end.fileno(),),
                    env=self.env,
                )
            self.processes[index] = process
            exited = asyncio.ensure_future(process.wait())
            await self._until_ready(index, parent_end, exited)
        except BaseException:
            parent_end.close()
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
            raise
        self.workers.channels[index] = Channel(index, parent_end)
        watcher = asyncio.create_task(self._watch(index, exited), name=f"worker {index} watch")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _until_ready(
        self, index: int, parent_end: socket.socket, exited: asyncio.Future[int]
    ) -> None:
        """Return once worker `index` says it serves; BadRequest if it exits or hangs."""
        parent_end.setblocking(False)
        ready = asyncio.ensure_future(asyncio.get_running_loop().sock_recv(parent_end, 16))
        either: list[asyncio.Future[Any]] = [ready, exited]
        try:
            await asyncio.wait(either, timeout=STARTUP_TIMEOUT_S, return_when="FIRST_COMPLETED")
        finally:
            ready.cancel()
        if self.stopping:
            exited.cancel()
            raise BadRequest(f"worker {index}: stopping")
        if not ready.done() or ready.cancelled() or ready.result() != b"ready":
            exited.cancel()
            code = exited.result() if exited.done() else None
            raise BadRequest(f"worker {index} did not start (exit code {code}; its log is above)")

    async def _watch(self, index: int, exited: asyncio.Future[int]) -> None:
        """When worker `index` exits on its own, start a new one in its place."""
        code = await exited
        # Its live gauges (sockets connected) leave the shared metrics; counters stay.
        metrics_dir = self.env.get(MULTIPROCESS_DIR)
        if metrics_dir:
            mark_process_dead(self.processes[index].pid, metrics_dir)  # type: ignore[no-untyped-call]
        channel = self.workers.channels.pop(index, None)
        if channel is not None:
            channel.close()
        if not self.stopping:
            logger.error("worker %d exited (code %s): starting a new one", index, code)
        # The first replacement starts at once (its start-up is the wait); one that fails
        # to start is tried again every RESTART_DELAY_S.
        while not self.stopping:
            try:
                await self._start(index)
                return
            except Exception as exc:  # a worker that cannot start now may later: keep trying
                logger.error("worker %d: %s; trying again", index, exc)
            await asyncio.sleep(RESTART_DELAY_S)

    async def stop(self) -> None:
        """SIGTERM every worker (each drains like a single node), SIGKILL after a while."""
        self.stopping = True
        running = [p for p in self.processes.values() if p.returncode is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        waits = [asyncio.ensure_future(p.wait()) for p in running]
        if waits:
            _, late = await asyncio.wait(waits, timeout=STOP_TIMEOUT_S)
            for process in running:
                if process.returncode is None:
                    logger.warning("worker pid %d did not stop in time: killed", process.pid)
                    process.kill()
            if late:
                await asyncio.wait(late)
        for watcher in list(self._watchers):
            watcher.cancel()
        for channel in self.workers.channels.values():
            channel.close()
        self.workers.channels.clear()
