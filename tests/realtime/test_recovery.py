"""Connection state recovery (Socket.IO v4.6+) with the stock JavaScript socket.io-client.

The client is tests/js/client.mjs: `socket.io-client` with its own reconnection, no code of
ours beyond `auth: {token}`. `drop` is `socket.io.engine.close()`: the transport is lost and
the client reconnects by itself, presenting the `pid` and `offset` the server gave it.
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from azora_nexus.auth.tokens import Role
from azora_nexus.events.archive import Archive
from azora_nexus.events.envelope import parse_event_id
from azora_nexus.realtime.recovery import PREFIX
from tests.realtime.js_client import StartJs
from tests.realtime.recovery_helpers import alerts, subscribed
from tests.realtime.socket_client import Connect
from tests.support.server import Node
from tests.support.waiting import eventually


async def sessions(node: Node) -> list[bytes]:
    redis: Redis = node.nexus.redis
    return [key async for key in redis.scan_iter(match=PREFIX + "*")]


# websocket: a direct session (direct.py); polling, and polling upgraded: Engine.IO's.
@pytest.mark.parametrize("transport", ["websocket", "polling", "upgrade"])
async def test_stock_client_recovers_every_event_once_in_order_without_subscribing_again(
    node: Node, js: StartJs, transport: str
) -> None:
    client = await js(node.url, node.token(Role.USER, "u1"), transport, reconnect=True)
    [first] = await client.wait_for("connected")
    assert first["recovered"] is False
    assert await client.send("subscribe", {"types": ["system.alert"]}) == {
        "ok": True,
        "subscribed": ["system.alert"],
    }
    before = await alerts(node.nexus, 5, "before")
    await client.wait_for("event", 5)
    # Each event's last argument is its id: the offset the client recovers from.
    assert [e["rest"] for e in client.events] == [[i] for i in before]

    await client.leave()
    away = await alerts(node.nexus, 5, "away")
    connect = await client.back()
    assert connect["recovered"] is True
    if transport != "upgrade":  # an upgraded client may come back on either
        assert connect["transport"] == transport
    after = await alerts(node.nexus, 5, "after")
    await client.wait_for("event", 15)
    assert client.ids == before + away + after
    # The missed ones came after the reconnect, replayed; one subscribe in all.
    replayed = [r["data"]["id"] for r in client.after_connect(2) if r["kind"] == "event"]
    assert replayed == away + after
    assert len([r for r in client.records if r["kind"] == "ack"]) == 1


async def test_stock_client_reconnecting_by_itself_recovers(node: Node, js: StartJs) -> None:
    """The Done-when shape: `engine.close()`, the client's own reconnect, events meanwhile."""
    client = await js(node.url, node.token(Role.USER, "u1"), reconnect=True)
    await client.wait_for("connected")
    await client.send("subscribe", {"types": ["system.*"]})
    before = await alerts(node.nexus, 5, "before")
    await client.wait_for("event", 5)
    await client.command("drop")
    away = await alerts(node.nexus, 5, "away")
    connects = await client.wait_for("connected", 2)
    assert connects[1]["recovered"] is True
    after = await alerts(node.nexus, 5, "after")
    await client.wait_for("event", 15)
    assert client.ids == before + away + after


async def test_recovery_with_no_event_before_the_drop_replays_all_since_the_subscribe(
    node: Node, js: StartJs
) -> None:
    earlier = await alerts(node.nexus, 2, "earlier")  # before the subscribe: not owed
    client = await subscribed(js, node.url, node.token(Role.USER, "u1"))
    await client.leave()
    away = await alerts(node.nexus, 3, "away")
    assert (await client.back())["recovered"] is True
    sentinel = await alerts(node.nexus, 1, "sentinel")
    await client.wait_for("event", 4)
    assert client.ids == away + sentinel
    assert not set(earlier) & set(client.ids)


async def test_recovery_owes_a_later_subscribed_type_only_events_after_its_subscribe(
    node: Node, js: StartJs
) -> None:
    client = await subscribed(js, node.url, node.token(Role.USER, "u1"))
    await node.nexus.events.publish("system.health.check", {}, source="t")  # not subscribed
    alert = await alerts(node.nexus, 1, "alert")
    await client.wait_for("event", 1)
    await client.send("subscribe", {"types": ["system.health.check"]})
    await client.leave()
    health = await node.nexus.events.publish("system.health.check", {}, source="t")
    assert (await client.back())["recovered"] is True
    sentinel = await alerts(node.nexus, 1, "sentinel")
    await client.wait_for("event", 3)
    assert client.ids == [*alert, health.id, *sentinel]


async def test_expired_session_gets_a_fresh_connect_and_no_replay(node: Node, js: StartJs) -> None:
    client = await subscribed(js, node.url, node.token(Role.USER, "u1"))
    before = await alerts(node.nexus, 2, "before")
    await client.wait_for("event", 2)
    await client.leave()
    await alerts(node.nexus, 3, "away")
    [key] = await sessions(node)
    await node.nexus.redis.delete(key)  # what the TTL does
    assert (await client.back())["recovered"] is False
    # Fresh: unsubscribed, nothing replayed. The client subscribes again, as a fresh one must.
    await client.send("subscribe", {"types": ["system.alert"]})
    sentinel = await alerts(node.nexus, 1, "sentinel")
    await client.wait_for("event", 3)
    assert client.ids == before + sentinel


async def test_session_of_another_user_is_not_restored(
    node: Node, js: StartJs, connect: Connect
) -> None:
    owner = await js(node.url, node.token(Role.USER, "owner"), reconnect=True)
    await owner.wait_for("connected")
    await owner.send("subscribe", {"types": ["system.alert"]})
    [key] = await sessions(node)
    pid = key.decode().removeprefix(PREFIX)
    other = await connect(
        node.url, None, auth={"token": node.token(Role.USER, "thief"), "pid": pid}
    )
    sentinel = await alerts(node.nexus, 1, "sentinel")
    await owner.wait_for("event", 1)
    await other.subscribe(["system.health.check"])
    marker = await node.nexus.events.publish("system.health.check", {}, source="t")
    await other.wait_for_id(marker.id)
    assert other.ids == [marker.id]  # the owner's subscription did not come with the pid
    assert owner.ids == sentinel
    # Still the owner's (bound to it by an HMAC: the user id itself is not kept).
    assert node.realtime.sessions.store is not None
    binding = node.realtime.sessions.store.binding(pid, "owner")
    assert await node.nexus.redis.hget(key, "user") == binding.encode()
    assert "owner" not in repr(await node.nexus.redis.hgetall(key))


async def test_a_bad_pid_or_offset_is_a_fresh_connect(node: Node, connect: Connect) -> None:
    token = node.token(Role.USER, "u1")
    for auth in (
        {"token": token, "pid": "x" * 24, "offset": "1-0"},
        {"token": token, "pid": 42},
        {"token": token, "pid": "../../etc", "offset": "nope"},
    ):
        client = await connect(node.url, None, auth=auth)
        assert client.sio.connected
    assert await sessions(node) == []


async def test_offset_older_than_retention_gets_a_fresh_connect_not_a_partial_replay(
    node: Node, js: StartJs
) -> None:
    client = await subscribed(js, node.url, node.token(Role.USER, "u1"))
    before = await alerts(node.nexus, 2, "before")
    await client.wait_for("event", 2)
    await client.leave()
    away = await alerts(node.nexus, 4, "away")
    archive = Archive(node.nexus.documents)

    async def all_archived() -> bool:
        return await node.nexus.documents.events.count_documents({}) == 6

    await eventually(all_archived)
    # Retention: the stream keeps the newest entry only, the archive drops what is older than
    # the second missed event. The client's offset (the second event) is now behind both.
    await node.nexus.redis.xtrim("azora:events", maxlen=1, approximate=False)
    assert await archive.expire_before(parse_event_id(away[1])[0] + 1) >= 4
    assert (await client.back())["recovered"] is False
    await client.send("subscribe", {"types": ["system.alert"]})
    sentinel = await alerts(node.nexus, 1, "sentinel")
    await client.wait_for("event", 3)
    assert client.ids == before + sentinel  # nothing of the partial history


async def test_a_recovered_client_that_also_resubscribes_with_after_gets_nothing_twice(
    node: Node, js: StartJs
) -> None:
    """Clients that track ids themselves re-subscribe with `after` on every connect; when
    the connect was a recovery, that must not repeat what recovery sends."""
    client = await subscribed(js, node.url, node.token(Role.USER, "u1"))
    before = await alerts(node.nexus, 3, "before")
    await client.wait_for("event", 3)
    await client.leave()
    away = await alerts(node.nexus, 3, "away")
    assert (await client.back())["recovered"] is True
    ack = await client.send("subscribe", {"types": ["system.alert"], "after": before[-1]})
    assert ack["ok"] is True
    after = await alerts(node.nexus, 2, "after")
    await client.wait_for("event", 8)
    sentinel = await alerts(node.nexus, 1, "sentinel")
    await client.wait_for("event", 9)
    assert client.ids == before + away + after + sentinel


async def test_a_replay_of_older_events_keeps_the_offset_so_recovery_repeats_nothing(
    node: Node, js: StartJs
) -> None:
    """A subscribe with `after` sends events older than some the socket has: they carry the
    newest id it has as their offset, so a later recovery neither repeats nor skips."""
    publish_health = node.nexus.events.publish
    older = [(await publish_health("system.health.check", {}, source="t")).id for _ in range(2)]
    client = await subscribed(js, node.url, node.token(Role.USER, "u1"))
    alerted = await alerts(node.nexus, 2, "alert")
    await client.wait_for("event", 2)
    await client.send("subscribe", {"types": ["system.health.check"], "after": "0-0"})
    await client.wait_for("event", 4)
    assert [e["rest"] for e in client.events[2:]] == [[alerted[-1]], [alerted[-1]]]
    [key] = await sessions(node)

    async def replay_noted_done() -> bool:
        return not await node.nexus.redis.hexists(key, "replaying")

    await eventually(replay_noted_done)
    await client.leave()
    away = [
        *await alerts(node.nexus, 1, "away"),
        (await publish_health("system.health.check", {}, source="t")).id,
    ]
    assert (await client.back())["recovered"] is True
    sentinel = await alerts(node.nexus, 1, "sentinel")
    await client.wait_for("event", 7)
    assert client.ids == alerted + older + away + sentinel
