"""The JavaScript `socket.io-client` (tests/js/client.mjs), run by Node and driven from Python."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "js" / "client.mjs"


class JsClient:
    """One Node process holding one socket; every line it prints is a record."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.records: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls, url: str, token: str | None, transport: str = "websocket", *, reconnect: bool = False
    ) -> JsClient:
        node = shutil.which("node")
        assert node is not None, "Node.js is needed for the JavaScript client tests"
        assert (ROOT / "node_modules" / "socket.io-client").is_dir(), "run `npm ci` first"
        process = await asyncio.create_subprocess_exec(
            node,
            str(DRIVER),
            url,
            token or "",
            transport,
            "reconnect" if reconnect else "",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.records.append(json.loads(line))
            self.changed.set()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == "event"]

    @property
    def ids(self) -> list[str]:
        return [r["data"]["id"] for r in self.events]

    async def wait_for(self, kind: str, count: int = 1, timeout_s: float = 10.0) -> list[Any]:
        """Wait until `count` records of `kind` have arrived; all of them."""
        async with asyncio.timeout(timeout_s):
            while True:
                found = [r for r in self.records if r["kind"] == kind]
                if len(found) >= count:
                    return found
                self.changed.clear()
                await self.changed.wait()

    async def command(self, op: str, body: Any = None) -> None:
        """Send a command that has no ack (`drop`)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, "body": body}).encode() + b"\n")
        await self.process.stdin.drain()

    async def send(self, op: str, body: Any = None) -> dict[str, Any]:
        """Send a command; for subscribe, unsubscribe and ping, the ack it got."""
        acks = len([r for r in self.records if r["kind"] == "ack"])
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, "body": body}).encode() + b"\n")
        await self.process.stdin.drain()
        ack: dict[str, Any] = (await self.wait_for("ack", acks + 1))[-1]["ack"]
        return ack

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await self.reader
