"""Socket.IO with a real python-socketio client over TCP: auth, subscribe, audience, resume."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import engineio
import pytest
import socketio

from azora_nexus.auth.tokens import Role
from azora_nexus.config import Settings
from azora_nexus.events.archive import Archive
from azora_nexus.events.envelope import Event
from tests.realtime.socket_client import Connect
from tests.support.server import Node, serve_node


async def alert(node: Node, message: str, user_id: str | None = None) -> Event:
    return await node.nexus.events.publish(
        "system.alert", {"message": message}, source="tests", user_id=user_id
    )


async def test_a_valid_token_connects_as_its_user(node: Node, connect: Connect) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"))
    sid = client.sio.get_sid()
    assert sid is not None
    subscriber = node.realtime.registry.get(sid)
    assert subscriber is not None
    assert (subscriber.principal.user_id, subscriber.principal.role) == ("u1", Role.USER)


@pytest.mark.parametrize(
    ("auth", "reason"),
    [
        (None, "unauthorized: missing token"),
        ({"token": "not-a-jwt"}, "unauthorized: invalid token"),
        ({"token": 42}, "unauthorized: missing token"),
    ],
)
async def test_a_missing_or_bad_token_is_refused_with_a_reason(
    node: Node, auth: dict[str, Any] | None, reason: str
) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    sio.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(node.url, auth=auth, transports=["websocket"], wait_timeout=5)
    assert len(errors) == 1
    assert errors[0]["message"].startswith(reason)
    await sio.disconnect()


async def test_an_expired_token_is_refused(node: Node) -> None:
    from azora_nexus.auth.tokens import issue_token

    expired = issue_token(node.nexus.jwt_secret, sub="u1", role=Role.USER, ttl_s=-10)
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    sio.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(node.url, auth={"token": expired}, transports=["websocket"])
    assert errors == [{"message": "unauthorized: token expired"}]
    await sio.disconnect()


async def test_a_subscriber_receives_the_envelope_under_the_event_type(
    node: Node, connect: Connect
) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"))
    ack = await client.subscribe(["finance.transaction.completed"])
    assert ack == {"ok": True, "subscribed": ["finance.transaction.completed"]}
    event = await node.nexus.events.publish(
        "finance.transaction.completed",
        {"walletId": "w1", "amount": "100.00"},
        source="payment-service",
    )
    [received] = await client.wait_for(1)
    assert client.names == ["finance.transaction.completed"]
    assert received == {
        "id": event.id,
        "type": "finance.transaction.completed",
        "payload": {"walletId": "w1", "amount": "100.00"},
        "source": "payment-service",
        "timestamp": event.timestamp_ms,
    }


async def test_polling_transport_delivers_too(node: Node, connect: Connect) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"), transport="polling")
    await client.subscribe(["system.alert"])
    event = await alert(node, "over polling")
    assert [e["id"] for e in await client.wait_for(1)] == [event.id]
    # The server closes: a client-side close leaves the long-poll open until the next ping.
    closed = asyncio.Event()
    client.sio.on("disconnect", lambda *_: closed.set())
    await node.sio.disconnect(client.sio.get_sid())
    await asyncio.wait_for(closed.wait(), 5)


async def test_a_pattern_matches_its_domain_only(node: Node, connect: Connect) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"))
    assert await client.subscribe(["education.*"]) == {"ok": True, "subscribed": ["education.*"]}
    await node.nexus.events.publish("finance.wallet.created", {"walletId": "w"}, source="tests")
    enrolled = await node.nexus.events.publish(
        "education.course.enrolled", {"courseId": "c"}, source="tests"
    )
    issued = await node.nexus.events.publish(
        "education.certificate.issued", {"courseId": "c"}, source="tests"
    )
    # Events reach a socket in stream order: the last one is the sentinel for the first.
    await client.wait_for_id(issued.id)
    assert client.ids == [enrolled.id, issued.id]
    assert client.names == ["education.course.enrolled", "education.certificate.issued"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"types": ["finance.nope"]}, "unknown event type"),
        ({"types": ["nope.*"]}, "matches no known event type"),
        ({"types": []}, "non-empty"),
        ({"types": ["system.alert"], "after": "yesterday"}, "bad event id"),
        ({"types": ["system.alert"], "after": 5}, "after must be"),
        ("system.alert", "expected an object"),
    ],
)
async def test_bad_subscriptions_are_refused_in_the_ack(
    node: Node, connect: Connect, body: Any, message: str
) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"))
    ack = await client.sio.call("subscribe", body, timeout=5)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "invalid"
    assert message in ack["error"]["message"]


async def test_a_users_events_reach_only_that_user_and_admins(node: Node, connect: Connect) -> None:
    user_a = await connect(node.url, node.token(Role.USER, "a"))
    user_b = await connect(node.url, node.token(Role.USER, "b"))
    admin = await connect(node.url, node.token(Role.ADMIN, "root"))
    service = await connect(node.url, node.token(Role.SERVICE, "svc"))
    for client in (user_a, user_b, admin, service):
        await client.subscribe(["system.*"])
    for_b = await alert(node, "b only", "b")
    public = await alert(node, "everyone")
    for_a = await alert(node, "a only", "a")
    sentinel = await alert(node, "everyone, last")
    for client in (user_a, user_b, admin, service):
        await client.wait_for_id(sentinel.id)
    assert admin.ids == [for_b.id, public.id, for_a.id, sentinel.id]
    assert user_a.ids == [public.id, for_a.id, sentinel.id]
    assert user_b.ids == [for_b.id, public.id, sentinel.id]
    assert service.ids == [public.id, sentinel.id]


async def test_unsubscribe_stops_delivery_of_those_types(node: Node, connect: Connect) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"))
    await client.subscribe(["system.alert", "finance.*"])
    ack = await client.sio.call("unsubscribe", {"types": ["system.alert"]}, timeout=5)
    assert ack == {"ok": True, "unsubscribed": ["system.alert"], "subscribed": ["finance.*"]}
    await alert(node, "not for you")
    created = await node.nexus.events.publish(
        "finance.wallet.created", {"walletId": "w"}, source="t"
    )
    await client.wait_for_id(created.id)
    assert client.ids == [created.id]


async def test_ping_answers_the_server_time(node: Node, connect: Connect) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"))
    before = int(time.time() * 1000)
    ack = await client.sio.call("ping", timeout=5)
    assert set(ack) == {"pong"}
    assert before - 1000 <= ack["pong"] <= int(time.time() * 1000) + 1000


async def test_resume_after_disconnect_gets_every_missed_event_once_in_order(
    node: Node, connect: Connect
) -> None:
    token = node.token(Role.USER, "u1")
    first = await connect(node.url, token)
    await first.subscribe(["system.alert"])
    published: list[str] = []
    stop = asyncio.Event()

    async def keep_publishing() -> None:
        while not stop.is_set() or len(published) < 400:
            published.append((await alert(node, str(len(published)))).id)
            if len(published) % 10 == 0:
                await asyncio.sleep(0.001)

    publisher = asyncio.create_task(keep_publishing())
    await first.wait_for(50)
    await first.sio.disconnect()
    last_seen = first.ids[-1]
    # Reconnect while the publisher keeps going: the replay races live events.
    second = await connect(node.url, token)
    ack = await second.subscribe(["system.alert"], after=last_seen)
    assert ack == {"ok": True, "subscribed": ["system.alert"]}
    await asyncio.sleep(0.2)
    stop.set()
    await publisher
    missed = published[published.index(last_seen) + 1 :]
    sentinel = await alert(node, "sentinel")
    await second.wait_for_id(sentinel.id, timeout_s=20)
    assert second.ids == [*missed, sentinel.id]
    assert first.ids == published[: len(first.ids)]


async def test_a_replay_ahead_of_a_lagging_tailer_sends_nothing_twice(
    node: Node, connect: Connect
) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"))
    fanout = node.realtime.fanout
    # Detach this node's fan-out: its tailer now lags behind the stream by as much as we like.
    node.nexus.tailer.remove_listener(fanout.dispatch)
    try:
        before = await alert(node, "before")
        missed = [await alert(node, str(i)) for i in range(5)]
        await client.subscribe(["system.alert"], after=before.id)
        await client.wait_for(5)
        later = await alert(node, "later")
        # The tailer catches up: what the replay sent comes by again, then what is new.
        await fanout.dispatch([before, *missed, later])
    finally:
        node.nexus.tailer.add_listener(fanout.dispatch)
    sentinel = await alert(node, "sentinel")  # through the tailer, after the dispatch above
    await client.wait_for_id(sentinel.id)
    assert client.ids == [e.id for e in (*missed, later, sentinel)]


async def test_a_resume_older_than_the_stream_replays_from_the_archive(
    settings: Settings, connect: Connect
) -> None:
    async with serve_node(settings.model_copy(update={"stream_maxlen": 100})) as node:
        published = []
        for i in range(350):
            published.append((await alert(node, str(i))).id)
            if i % 50 == 49:  # a cap this small needs the archiver to keep up
                await _archived(node, i + 1)
        oldest_on_stream = await node.nexus.events.stream.first_id()
        assert oldest_on_stream is not None
        assert published.index(oldest_on_stream) > 100
        client = await connect(node.url, node.token(Role.USER, "u1"))
        await client.subscribe(["system.*"], after=published[0])
        await client.wait_for(349)
        live = await alert(node, "live")
        sentinel = await alert(node, "sentinel")
        await client.wait_for_id(sentinel.id)
        assert client.ids == [*published[1:], live.id, sentinel.id]


async def test_a_resume_from_before_what_retention_keeps_is_refused_in_the_ack(
    node: Node, connect: Connect
) -> None:
    """A client offline longer than the archive keeps hears so in the ack (as GET /events
    answers 410), and keeps its socket: before, the replay failed after an `{ok: true}`
    ack and the node cut the socket, so a client resuming from the same id never got back."""
    published = [await alert(node, str(i)) for i in range(8)]
    await _archived(node, 8)
    await node.nexus.events.stream.redis.xtrim("azora:events", maxlen=2, approximate=False)
    await Archive(node.nexus.documents).expire_before(published[4].order[0] + 1)
    client = await connect(node.url, node.token(Role.USER, "u1"))
    ack = await client.subscribe(["system.*"], after=published[1].id)
    assert ack["ok"] is False
    assert ack["error"]["code"] == "history_expired"
    assert client.sio.connected
    kept = await client.subscribe(["system.*"], after=published[4].id)
    assert kept == {"ok": True, "subscribed": ["system.*"]}
    await client.wait_for(3)
    assert client.ids == [e.id for e in published[5:]]


async def _archived(node: Node, count: int) -> None:
    async with asyncio.timeout(20):
        while True:
            if await node.nexus.documents.events.count_documents({}) >= count:
                return
            await asyncio.sleep(0.05)


async def test_a_socket_that_never_sends_connect_is_closed(settings: Settings) -> None:
    quick = settings.model_copy(update={"socket_connect_timeout_s": 0.5})
    async with serve_node(quick) as node:
        eio = engineio.AsyncClient()
        closed = asyncio.Event()
        eio.on("disconnect", closed.set)
        await eio.connect(node.url, transports=["websocket"], engineio_path="socket.io")
        await asyncio.wait_for(closed.wait(), 5)


async def test_an_oversized_packet_closes_the_socket(node: Node, connect: Connect) -> None:
    client = await connect(node.url, node.token(Role.USER, "u1"))
    closed = asyncio.Event()
    client.sio.on("disconnect", lambda *_: closed.set())
    await client.sio.emit("subscribe", {"types": ["system.alert"] * 20_000})
    await asyncio.wait_for(closed.wait(), 5)


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_python_socketio_handlers_of_one_argument_get_every_event(
    node: Node, transport: str
) -> None:
    """python-socketio cannot recover and passes a handler every argument: its events carry
    no offset, so `def on(event)` (and a catch-all of `(name, event)`) works as always."""
    sio = socketio.AsyncClient(reconnection=False)
    got: list[dict[str, Any]] = []
    caught: list[str] = []

    three = asyncio.Event()

    async def on_alert(event: dict[str, Any]) -> None:
        got.append(event)
        if len(got) == 3:
            three.set()

    async def on_any(name: str, event: dict[str, Any]) -> None:
        caught.append(event["id"])

    closed = asyncio.Event()
    sio.on("system.alert", on_alert)
    sio.on("*", on_any)
    sio.on("disconnect", lambda *_: closed.set())
    await sio.connect(node.url, auth={"token": node.token(Role.USER, "u1")}, transports=[transport])
    try:
        ack = await sio.call("subscribe", {"types": ["system.alert"]}, timeout=5)
        assert ack["ok"] is True
        sent = [await alert(node, f"plain {n}") for n in range(3)]
        await asyncio.wait_for(three.wait(), 10)
        assert [e["id"] for e in got] == [e.id for e in sent]
        assert caught == []  # a named handler took them all
    finally:
        # From the server: a client-side close leaves a long-poll open until the next ping.
        await node.sio.disconnect(sio.get_sid())
        await asyncio.wait_for(closed.wait(), 5)
