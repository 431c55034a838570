"""Connection state recovery across nodes: the stock socket.io-client comes back on another
node after a transport loss, after its node was killed with -9, after every node restarted.

Nodes are `azora serve` processes on the test's backends; the client's reconnects are sent
to another node (`retarget`) as a load balancer would send them.
"""

from __future__ import annotations

import time

import pytest

from azora_nexus.auth.tokens import Role
from azora_nexus.config import Settings
from azora_nexus.nexus import Nexus
from tests.realtime.js_client import JsClient, StartJs
from tests.realtime.node_process import NodeProcess
from tests.realtime.recovery_helpers import alerts, subscribed
from tests.realtime.test_multinode import StartNode, publisher, start_node, token

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow

__all__ = ["publisher", "start_node"]  # fixtures


async def subscribed_client(
    js: StartJs, node: NodeProcess, settings: Settings, transport: str = "websocket"
) -> JsClient:
    return await subscribed(js, node.url, token(settings, Role.USER, "u1"), transport)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_reconnect_on_another_node_is_recovered(
    settings: Settings, start_node: StartNode, publisher: Nexus, js: StartJs, transport: str
) -> None:
    node_a = await start_node("a")
    node_b = await start_node("b")
    client = await subscribed_client(js, node_a, settings, transport)
    before = await alerts(publisher, 5, "before")
    await client.wait_for("event", 5)
    await client.leave(node_b.url)
    away = await alerts(publisher, 5, "away")
    connect = await client.back()
    assert connect["recovered"] is True
    assert connect["transport"] == transport
    after = await alerts(publisher, 5, "after")
    await client.wait_for("event", 15)
    assert client.ids == before + away + after
    assert len([r for r in client.records if r["kind"] == "ack"]) == 1


async def test_a_client_of_a_node_killed_with_9_recovers_on_another(
    settings: Settings, start_node: StartNode, publisher: Nexus, js: StartJs
) -> None:
    node_a = await start_node("a")
    node_b = await start_node("b")
    client = await subscribed_client(js, node_a, settings)
    before = await alerts(publisher, 5, "before")
    await client.wait_for("event", 5)
    await client.command("retarget", {"url": node_b.url})  # the balancer's next pick
    killed_at = time.monotonic()
    node_a.kill()
    away = await alerts(publisher, 5, "away")
    connects = await client.wait_for("connected", 2, timeout_s=20)
    recovered_s = time.monotonic() - killed_at
    assert connects[1]["recovered"] is True
    after = await alerts(publisher, 5, "after")
    await client.wait_for("event", 15)
    assert client.ids == before + away + after
    print(f"kill -9 to recovered on another node: {recovered_s:.2f} s")


async def test_recovery_after_every_node_was_restarted_with_no_event_before_the_drop(
    settings: Settings, start_node: StartNode, publisher: Nexus, js: StartJs
) -> None:
    node_a = await start_node("a")
    client = await subscribed_client(js, node_a, settings)
    node_a.kill()  # the only node: nobody serves until the restart
    await client.wait_for("disconnected")
    away = await alerts(publisher, 5, "away")
    restarted = await start_node("a2")
    await client.command("retarget", {"url": restarted.url})
    connects = await client.wait_for("connected", 2, timeout_s=30)
    assert connects[1]["recovered"] is True
    after = await alerts(publisher, 2, "after")
    await client.wait_for("event", 7)
    assert client.ids == away + after
    replayed = [r["data"]["id"] for r in client.after_connect(2) if r["kind"] == "event"]
    assert replayed == away + after
