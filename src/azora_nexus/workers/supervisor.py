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
        parent_end.setblocking(False)
        loop = asyncio.get_running_loop()
        ready = asyncio.ensure_future(loop.sock_recv(parent_end, 16))
        exited = asyncio.ensure_future(process.wait())
        await asyncio.wait(
            {ready, exited}, timeout=STARTUP_TIMEOUT_S, return_when="FIRST_COMPLETED"
        )
        if not ready.done() or ready.result() != b"ready":
            ready.cancel()
            exited.cancel()
            parent_end.close()
            if process.returncode is None:
                process.kill()
            code = await process.wait()
            raise BadRequest(f"worker {index} did not start (exit code {code}; its log is above)")
        self.workers.channels[index] = Channel(index, parent_end)
        watcher = asyncio.create_task(self._watch(index, exited), name=f"worker {index} watch")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

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
        while not self.stopping:
            await asyncio.sleep(RESTART_DELAY_S)
            if self.stopping:
                return
            try:
                await self._start(index)
                return
            except BadRequest as exc:
                logger.error("%s; trying again", exc)

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
