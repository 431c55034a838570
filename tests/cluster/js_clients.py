"""Many stock `socket.io-client` sockets in one Node process (tests/js/cluster_clients.mjs)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "js" / "cluster_clients.mjs"


class JsClients:
    """The Node process; every line it prints is a record."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.records: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, url: str, types: list[str], clients: list[tuple[str, str]]) -> JsClients:
        """`clients`: (token, transport) per socket."""
        node = shutil.which("node")
        assert node is not None, "Node.js is needed for the JavaScript client tests"
        config = {
            "url": url,
            "types": types,
            "clients": [{"token": t, "transport": transport} for t, transport in clients],
        }
        process = await asyncio.create_subprocess_exec(
            *(node, str(DRIVER), json.dumps(config)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            limit=64 * 1024 * 1024,  # the report is one long line
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.records.append(json.loads(line))
            self.changed.set()

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind]

    async def wait_until(self, kind: str, count: int, timeout_s: float) -> list[dict[str, Any]]:
        """Wait until `count` records of `kind` have arrived; all of them."""
        async with asyncio.timeout(timeout_s):
            while True:
                found = self.of_kind(kind)
                if len(found) >= count:
                    return found
                assert self.process.returncode is None, "the Node clients exited"
                self.changed.clear()
                await self.changed.wait()

    async def report(self) -> list[dict[str, Any]]:
        """Each socket's state: event ids, connects, disconnects."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"report\n")
        await self.process.stdin.drain()
        found = await self.wait_until("report", 1, timeout_s=10)
        clients: list[dict[str, Any]] = found[0]["clients"]
        return clients

    async def close(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
        await self.process.wait()
        await self.reader
