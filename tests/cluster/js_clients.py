"""Many stock `socket.io-client` sockets in one Node process (tests/js/cluster_clients.mjs)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.support.node_script import NodeScript, run_script


class JsClients(NodeScript):
    """The Node process; every line it prints is a record."""

    @classmethod
    async def start(cls, url: str, types: list[str], clients: list[tuple[str, str]]) -> JsClients:
        """`clients`: (token, transport) per socket."""
        config = {
            "url": url,
            "types": types,
            "clients": [{"token": t, "transport": transport} for t, transport in clients],
        }
        return cls(await run_script("cluster_clients.mjs", json.dumps(config)))

    async def report(self) -> list[dict[str, Any]]:
        """Each socket's state: event ids, connects, disconnects."""
        await self.write("report")
        found = await self.wait_for("report", 1, timeout_s=10)
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
