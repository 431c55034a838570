"""What the recovery tests share: stock clients that reconnect by themselves, and alerts."""

from __future__ import annotations

from azora_nexus.nexus import Nexus
from tests.realtime.js_client import JsClient, StartJs


async def alerts(nexus: Nexus, count: int, tag: str) -> list[str]:
    """Publish `count` public `system.alert` events; their ids."""
    return [
        (await nexus.events.publish("system.alert", {"m": f"{tag}{n}"}, source="t")).id
        for n in range(count)
    ]


async def subscribed(js: StartJs, url: str, token: str, transport: str = "websocket") -> JsClient:
    """A stock client that reconnects by itself, connected and subscribed to `system.alert`."""
    client = await js(url, token, transport, reconnect=True)
    await client.wait_for("connected")
    await client.send("subscribe", {"types": ["system.alert"]})
    return client
