"""The JavaScript `socket.io-client` (tests/js/client.mjs), run by Node and driven from Python."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from tests.support.node_script import NodeScript, run_script

# `await js(url, token, transport="websocket", *, reconnect=False)`: a started JsClient.
StartJs = Callable[..., Awaitable["JsClient"]]


class JsClient(NodeScript):
    """One Node process holding one socket; every line it prints is a record."""

    @classmethod
    async def start(
        cls, url: str, token: str | None, transport: str = "websocket", *, reconnect: bool = False
    ) -> JsClient:
        reconnecting = "reconnect" if reconnect else ""
        return cls(await run_script("client.mjs", url, token or "", transport, reconnecting))

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.of_kind("event")

    @property
    def ids(self) -> list[str]:
        return [r["data"]["id"] for r in self.events]

    def after_connect(self, number: int) -> list[dict[str, Any]]:
        """The records after the client's `number`-th connect (1 = the first)."""
        seen = 0
        for index, record in enumerate(self.records):
            if record["kind"] == "connected":
                seen += 1
                if seen == number:
                    return self.records[index + 1 :]
        raise AssertionError(f"no connect number {number}")

    async def command(self, op: str, body: Any = None) -> None:
        """Send a command that has no ack (`drop`)."""
        await self.write(json.dumps({"op": op, "body": body}))

    async def send(self, op: str, body: Any = None) -> dict[str, Any]:
        """Send a command; for subscribe, unsubscribe and ping, the ack it got."""
        acks = len(self.of_kind("ack"))
        await self.command(op, body)
        ack: dict[str, Any] = (await self.wait_for("ack", acks + 1))[-1]["ack"]
        return ack

    async def leave(self, url: str | None = None) -> None:
        """Lose the transport (`socket.io.engine.close()`) and stay away until `reconnect`
        (to `url`, when given)."""
        gone = len(self.of_kind("disconnected"))
        body: dict[str, Any] = {"hold": True}
        if url is not None:
            body["url"] = url
        await self.command("drop", body)
        await self.wait_for("disconnected", gone + 1)

    async def back(self) -> dict[str, Any]:
        """Reconnect after `leave`: the record of that connect (`recovered`, `transport`)."""
        count = len(self.of_kind("connected")) + 1
        await self.command("reconnect")
        return (await self.wait_for("connected", count))[-1]

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await self.reader


@asynccontextmanager
async def js_clients() -> AsyncIterator[StartJs]:
    """Start clients (`JsClient.start`) while the context lasts; kill them at its end."""
    clients: list[JsClient] = []

    async def start(
        url: str, token: str | None, transport: str = "websocket", *, reconnect: bool = False
    ) -> JsClient:
        client = await JsClient.start(url, token, transport, reconnect=reconnect)
        clients.append(client)
        return client

    try:
        yield start
    finally:
        for client in clients:
            await client.close()
