"""A subscribe with `after` while Redis is frozen (SIGSTOP of the real server): the ack
comes before the replay reads history, so a replay that cannot read it must not go live
past the gap; the socket is cut, its client reconnects and, once Redis is back, resumes
from its last event and gets every one it missed."""

from __future__ import annotations

import time

from azora_nexus.auth.tokens import Role, issue_token
from tests.faults.fault_helpers import JWT_SECRET, TIMEOUT_S, OwnBackends
from tests.realtime.js_client import JsClient
from tests.support.server import serve_node
from tests.support.waiting import wait_healthy


async def test_a_resume_that_cannot_read_history_cuts_the_socket(
    own_backends: OwnBackends,
) -> None:
    async with serve_node(own_backends.settings()) as node:
        publish = node.nexus.events.publish
        missed = [(await publish("system.alert", {"n": n}, source="t")).id for n in range(3)]
        token = issue_token(JWT_SECRET, sub="u1", role=Role.USER)
        client = await JsClient.start(node.url, token, "websocket", reconnect=True)
        try:
            await client.wait_for("connected")
            with own_backends.frozen("redis"):
                started = time.monotonic()
                ack = await client.send("subscribe", {"types": ["system.alert"], "after": "0-0"})
                assert ack["ok"] is True
                # Before: the replay failed and the socket went live past the gap, silently.
                await client.wait_for("disconnected", timeout_s=TIMEOUT_S * 4)
                cut_s = time.monotonic() - started
            assert cut_s < TIMEOUT_S * 3
            await client.wait_for("connected", 2, timeout_s=TIMEOUT_S * 8)
            await wait_healthy(node.url)  # Redis answers the node again
            ack = await client.send("subscribe", {"types": ["system.alert"], "after": "0-0"})
            assert ack["ok"] is True
            await client.wait_for("event", len(missed))
            assert client.ids[: len(missed)] == missed
        finally:
            await client.close()
