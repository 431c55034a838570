"""Connection state recovery with Redis frozen (SIGSTOP of the real server): the reconnect is
a fresh connect within the backend timeout (`recovered` false, nothing replayed), not a
hang and not a partial replay; once Redis is back, the client subscribes as a fresh one."""

from __future__ import annotations

import time

from azora_nexus.auth.tokens import Role, issue_token
from tests.faults.fault_helpers import JWT_SECRET, TIMEOUT_S, OwnBackends
from tests.realtime.js_client import JsClient
from tests.support.server import serve_node


async def test_a_reconnect_while_redis_is_frozen_is_a_fresh_connect(
    own_backends: OwnBackends,
) -> None:
    async with serve_node(own_backends.settings()) as node:
        publish = node.nexus.events.publish
        token = issue_token(JWT_SECRET, sub="u1", role=Role.USER)
        client = await JsClient.start(node.url, token, "websocket", reconnect=True)
        try:
            await client.wait_for("connected")
            await client.send("subscribe", {"types": ["system.alert"]})
            before = [(await publish("system.alert", {"n": n}, source="t")).id for n in range(2)]
            await client.wait_for("event", 2)
            await client.leave()
            await publish("system.alert", {"m": "away"}, source="t")
            with own_backends.frozen("redis"):
                started = time.monotonic()
                await client.command("reconnect")
                connects = await client.wait_for("connected", 2, timeout_s=TIMEOUT_S * 4)
                took_s = time.monotonic() - started
            assert connects[1]["recovered"] is False
            assert took_s < TIMEOUT_S * 3
            ack = await client.send("subscribe", {"types": ["system.alert"]})
            assert ack["ok"] is True
            # Redis may still be failing fast: the sentinel may take the outbox (its id then
            # comes with the relay), so it is known by its payload.
            await publish("system.alert", {"m": "sentinel"}, source="t")
            await client.wait_for("event", 3)
            assert client.ids[:2] == before
            assert [e["data"]["payload"] for e in client.events[2:]] == [{"m": "sentinel"}]
        finally:
            await client.close()
