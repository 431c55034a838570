"""A Nexus node in a process of its own (`azora serve`), to run several and kill one."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import asyncpg

from azora_nexus.config import Settings
from azora_nexus.events.relay import asyncpg_dsn
from tests.support.server import reserve_port
from tests.support.waiting import wait_healthy

AZORA = Path(sys.executable).with_name("azora")


class NodeProcess:
    """`azora serve` on a free port of 127.0.0.1 against the test's backends."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    @classmethod
    async def start(
        cls, settings: Settings, name: str, workers: int = 1, ready_timeout_s: float = 30.0
    ) -> NodeProcess:
        port = reserve_port()
        env = os.environ | {
            "DATABASE_URL": settings.database_url or "",
            "REDIS_URL": settings.redis_url or "",
            "MONGODB_URI": settings.mongodb_uri or "",
            "AZORA_JWT_SECRET": settings.jwt_secret or "",
            "AZORA_DATA_DIR": str(settings.data_dir / name),
            "AZORA_ENV": "test",
            "AZORA_LOG_LEVEL": "WARNING",
        }
        process = await asyncio.create_subprocess_exec(
            *(str(AZORA), "serve", "--port", str(port), "--workers", str(workers)),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
        )
        node = cls(process, f"http://127.0.0.1:{port}")
        try:
            # Each worker imports and opens everything: on two loaded cores that takes a while.
            await node.wait_ready(timeout_s=ready_timeout_s * workers)
        except BaseException:
            await node.stop()  # no fixture holds it yet: it would outlive the test
            raise
        return node

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        await wait_healthy(self.url, timeout_s, self.process)

    def kill(self) -> None:
        """kill -9: no shutdown, no cleanup, connections cut by the kernel."""
        self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
        await self.process.wait()


async def relay_holder_pid(database_url: str) -> int | None:
    """The pid of the node whose relay holds the lock (from its connection's name)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        # The relay's lock, not another advisory lock (retention takes one too): its
        # connection is named "azora-relay <host> pid <pid>".
        name = await conn.fetchval(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()"
            " AND a.application_name LIKE 'azora-relay %'"
        )
    finally:
        await conn.close()
    return None if name is None else int(name.rsplit(" ", 1)[1])
