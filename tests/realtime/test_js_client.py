"""The same contract through the JavaScript socket.io-client that web clients use."""

from __future__ import annotations

import asyncio
import time

from httpx import AsyncClient

from azora_nexus.auth.tokens import Role, issue_token
from tests.realtime.js_client import StartJs
from tests.sovereignty.life import register
from tests.support.server import Node


async def test_js_connects_and_a_bad_token_is_refused_with_a_reason(
    node: Node, js: StartJs
) -> None:
    good = await js(node.url, node.token(Role.USER, "u1"))
    missing = await js(node.url, None)
    bad = await js(node.url, "not-a-jwt")
    assert len(await good.wait_for("connected")) == 1
    [refused] = await missing.wait_for("connect_error")
    assert refused["message"].startswith("unauthorized: missing token")
    [refused] = await bad.wait_for("connect_error")
    assert refused["message"].startswith("unauthorized: invalid token")


async def test_js_subscribes_with_patterns_receives_and_unsubscribes(
    node: Node, js: StartJs
) -> None:
    client = await js(node.url, node.token(Role.USER, "u1"), "polling")
    await client.wait_for("connected")
    ack = await client.send("subscribe", {"types": ["education.*", "system.alert"]})
    assert ack == {"ok": True, "subscribed": ["education.*", "system.alert"]}
    assert (await client.send("subscribe", {"types": ["nope"]}))["ok"] is False
    enrolled = await node.nexus.events.publish("education.course.enrolled", {"c": "1"}, source="t")
    await node.nexus.events.publish("finance.wallet.created", {"w": "1"}, source="t")
    alert = await node.nexus.events.publish("system.alert", {"m": "1"}, source="t")
    await client.wait_for("event", 2)
    assert [(e["name"], e["data"]) for e in client.events] == [
        ("education.course.enrolled", enrolled.to_wire()),
        ("system.alert", alert.to_wire()),
    ]
    ack = await client.send("unsubscribe", {"types": ["education.*"]})
    assert ack["ok"] is True
    await node.nexus.events.publish("education.course.enrolled", {"c": "2"}, source="t")
    last = await node.nexus.events.publish("system.alert", {"m": "2"}, source="t")
    await client.wait_for("event", 3)
    assert client.ids == [enrolled.id, alert.id, last.id]
    pong = await client.send("ping")
    assert isinstance(pong["pong"], int)


async def test_js_user_never_sees_another_users_events(node: Node, js: StartJs) -> None:
    user_a = await js(node.url, node.token(Role.USER, "a"))
    user_b = await js(node.url, node.token(Role.USER, "b"))
    for client in (user_a, user_b):
        await client.wait_for("connected")
        await client.send("subscribe", {"types": ["finance.*"]})
    for_b = await node.nexus.events.publish(
        "finance.mining.reward", {"amount": "1"}, source="t", user_id="b"
    )
    for_a = await node.nexus.events.publish(
        "finance.mining.reward", {"amount": "2"}, source="t", user_id="a"
    )
    # Public, published last: once each client has it, the other's event would have come.
    sentinel = await node.nexus.events.publish("finance.mining.reward", {"amount": "3"}, source="t")
    await user_a.wait_for("event", 2)
    await user_b.wait_for("event", 2)
    assert user_a.ids == [for_a.id, sentinel.id]
    assert user_b.ids == [for_b.id, sentinel.id]


async def test_js_resumes_after_disconnect_while_events_keep_flowing(
    node: Node, js: StartJs
) -> None:
    token = node.token(Role.USER, "u1")
    first = await js(node.url, token)
    await first.wait_for("connected")
    await first.send("subscribe", {"types": ["system.alert"]})
    published: list[str] = []
    stop = asyncio.Event()

    async def keep_publishing() -> None:
        while not stop.is_set() or len(published) < 300:
            published.append((await node.nexus.events.publish("system.alert", {}, source="t")).id)
            if len(published) % 10 == 0:
                await asyncio.sleep(0.002)

    publisher = asyncio.create_task(keep_publishing())
    await first.wait_for("event", 30)
    await first.close()
    last_seen = first.ids[-1]
    second = await js(node.url, token)
    await second.wait_for("connected")
    ack = await second.send("subscribe", {"types": ["system.alert"], "after": last_seen})
    assert ack == {"ok": True, "subscribed": ["system.alert"]}
    stop.set()
    await publisher
    missed = published[published.index(last_seen) + 1 :]
    sentinel = await node.nexus.events.publish("system.alert", {"m": "sentinel"}, source="t")
    await second.wait_for("event", len(missed) + 1, timeout_s=20)
    assert second.ids == [*missed, sentinel.id]


async def test_js_socket_closed_at_expiry_with_the_reason_unless_refreshed(
    node: Node, js: StartJs
) -> None:
    token = issue_token(node.nexus.jwt_secret, sub="u1", role=Role.USER, ttl_s=2)
    expiring = await js(node.url, token)
    refreshed = await js(node.url, token, "polling")
    for client in (expiring, refreshed):
        await client.wait_for("connected")
    await refreshed.send("subscribe", {"types": ["system.alert"]})
    longer = issue_token(node.nexus.jwt_secret, sub="u1", role=Role.USER, ttl_s=3600)
    ack = await refreshed.send("refresh", {"token": longer})
    assert ack["ok"] is True
    assert ack["expiresAt"] > (time.time() + 3000) * 1000
    other = issue_token(node.nexus.jwt_secret, sub="u2", role=Role.USER, ttl_s=3600)
    refused = await expiring.send("refresh", {"token": other})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "forbidden"

    [closing] = [r for r in await expiring.wait_for("event") if r["name"] == "closing"]
    assert closing["data"]["code"] == "token_expired"
    [closed] = await expiring.wait_for("disconnected")
    assert closed["reason"] == "io server disconnect"
    # The expired socket is gone; the refreshed one, past the same expiry, still receives.
    event = await node.nexus.events.publish("system.alert", {"m": "after"}, source="tests")
    await refreshed.wait_for("event")
    assert refreshed.ids == [event.id]
    assert not [r for r in refreshed.records if r["kind"] == "disconnected"]


async def test_js_socket_of_an_erased_user_is_closed_with_the_reason(
    node: Node, js: StartJs
) -> None:
    async with AsyncClient(base_url=node.url, timeout=30) as http:
        gone, stays = await register(http, "gone"), await register(http, "stays")
        clients = {p.id: await js(node.url, p.token) for p in (gone, stays)}
        for client in clients.values():
            await client.wait_for("connected")
        await clients[stays.id].send("subscribe", {"types": ["system.alert"]})
        erased = await http.request(
            "DELETE",
            f"/api/users/{gone.id}",
            headers=gone.headers,
            json={"password": gone.password},
        )
        assert erased.status_code == 204, erased.text
    closing = await clients[gone.id].wait_for("event")
    assert [(r["name"], r["data"]["code"]) for r in closing] == [("closing", "account_erased")]
    [closed] = await clients[gone.id].wait_for("disconnected")
    assert closed["reason"] == "io server disconnect"
    # Published after the erasure: once the other user has it, the erasure was handled.
    sentinel = await node.nexus.events.publish("system.alert", {"m": "sentinel"}, source="tests")
    await clients[stays.id].wait_for("event")
    assert clients[stays.id].ids == [sentinel.id]
    assert not [r for r in clients[stays.id].records if r["kind"] == "disconnected"]
