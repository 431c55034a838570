"""Tokens on live sockets (python-socketio client): a socket lives until its token's `exp`
unless it is refreshed in band with a token of the same user, not erased."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from httpx import AsyncClient

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.domain.privacy.revocation import record_erased
from tests.realtime.socket_client import Client, Connect
from tests.sovereignty.life import register
from tests.support.server import Node

SHORT_TTL_S = 2


def short_token(node: Node, sub: str, role: Role = Role.USER, ttl_s: int = SHORT_TTL_S) -> str:
    return issue_token(node.nexus.jwt_secret, sub=sub, role=role, ttl_s=ttl_s)


def expiry_of(node: Node, client: Client) -> int:
    sid = client.sio.get_sid()
    assert sid is not None
    subscriber = node.realtime.registry.get(sid)
    assert subscriber is not None
    return subscriber.expires_at_s


def watch_disconnect(client: Client) -> tuple[asyncio.Future[float], list[Any]]:
    """A future resolved with time.time() at the disconnect, and the reason given."""
    closed: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    reasons: list[Any] = []

    async def on_disconnect(*args: Any) -> None:
        reasons.extend(args)
        if not closed.done():
            closed.set_result(time.time())

    client.sio.on("disconnect", on_disconnect)
    return closed, reasons


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_socket_is_closed_at_its_tokens_expiry_with_the_reason(
    node: Node, connect: Connect, transport: str
) -> None:
    client = await connect(node.url, short_token(node, "u1"), transport=transport)
    expires_at_s = expiry_of(node, client)
    closed, reasons = watch_disconnect(client)
    closed_at = await asyncio.wait_for(closed, SHORT_TTL_S + 10)
    assert closed_at >= expires_at_s  # not before
    print(f"closed {closed_at - expires_at_s:.3f} s after exp ({transport})")
    assert client.names == ["closing"]
    assert client.received == [
        {
            "code": "token_expired",
            "message": "the access token expired: refresh it in band before exp,"
            " or connect with a new one",
        }
    ]
    assert reasons == ["server disconnect"]  # python-socketio's name for it
    assert node.realtime.registry.sockets == {}
    assert len(node.realtime.expiries) == 0


async def test_a_socket_refreshed_before_expiry_stays_and_keeps_receiving(
    node: Node, connect: Connect
) -> None:
    token = short_token(node, "u1")
    refreshed = await connect(node.url, token)
    # Same token, not refreshed: its close says the old expiry has been handled.
    control = await connect(node.url, token)
    control_closed, _ = watch_disconnect(control)
    refreshed_closed, _ = watch_disconnect(refreshed)
    await refreshed.subscribe(["system.alert"])
    longer = short_token(node, "u1", ttl_s=3600)
    ack = await refreshed.sio.call("refresh", {"token": longer}, timeout=10)
    assert ack == {"ok": True, "expiresAt": expiry_of(node, refreshed) * 1000}
    assert expiry_of(node, refreshed) >= time.time() + 3000

    await asyncio.wait_for(control_closed, SHORT_TTL_S + 10)
    event = await node.nexus.events.publish("system.alert", {"m": "after"}, source="tests")
    await refreshed.wait_for_id(event.id)
    assert refreshed.sio.connected
    assert not refreshed_closed.done()


async def test_a_refresh_with_another_users_or_an_erased_users_token_changes_nothing(
    node: Node, connect: Connect
) -> None:
    async with AsyncClient(base_url=node.url, timeout=30) as http:
        gone = await register(http, "gone")
        erased = await http.request(
            "DELETE",
            f"/api/users/{gone.id}",
            headers=gone.headers,
            json={"password": gone.password},
        )
        assert erased.status_code == 204, erased.text
    client = await connect(node.url, short_token(node, "u1"))
    closed, _ = watch_disconnect(client)
    expires_at_s = expiry_of(node, client)
    refusals = [
        await client.sio.call("refresh", {"token": token}, timeout=10)
        for token in (
            short_token(node, "u2", ttl_s=3600),
            short_token(node, gone.id, ttl_s=3600),
            gone.token,
            "not-a-jwt",
            short_token(node, "u1", ttl_s=-10),
        )
    ]
    assert [r["ok"] for r in refusals] == [False] * 5
    assert [r["error"]["code"] for r in refusals] == [
        "forbidden",
        "unauthorized",
        "unauthorized",
        "unauthorized",
        "unauthorized",
    ]
    assert refusals[1]["error"]["message"] == "this account was erased"
    assert refusals[4]["error"]["message"] == "token expired"
    assert (await client.sio.call("refresh", {}, timeout=10))["error"]["code"] == "invalid"
    sid = client.sio.get_sid()
    assert sid is not None
    subscriber = node.realtime.registry.get(sid)
    assert subscriber is not None
    assert subscriber.principal.user_id == "u1"
    assert expiry_of(node, client) == expires_at_s
    await asyncio.wait_for(closed, SHORT_TTL_S + 10)  # still closed at the first expiry
    assert client.received[-1]["code"] == "token_expired"


async def test_a_role_changed_by_a_refresh_takes_effect_on_the_live_socket(
    node: Node, connect: Connect
) -> None:
    client = await connect(node.url, short_token(node, "boss", Role.ADMIN, ttl_s=3600))
    await client.subscribe(["finance.*"])
    seen = await node.nexus.events.publish(
        "finance.mining.reward", {"amount": "1"}, source="tests", user_id="someone"
    )
    await client.wait_for_id(seen.id)
    ack = await client.sio.call(
        "refresh", {"token": short_token(node, "boss", Role.USER, ttl_s=3600)}, timeout=10
    )
    assert ack["ok"] is True
    hidden = await node.nexus.events.publish(
        "finance.mining.reward", {"amount": "2"}, source="tests", user_id="someone"
    )
    own = await node.nexus.events.publish(
        "finance.mining.reward", {"amount": "3"}, source="tests", user_id="boss"
    )
    assert hidden.id not in await client.wait_for_id(own.id)
    assert client.ids == [seen.id, own.id]


async def test_a_socket_is_closed_when_its_user_is_recorded_erased_before_the_announcement(
    node: Node, connect: Connect
) -> None:
    # Only the record and its NOTIFY, as when the `system.user.erased` event is still on
    # its way through the outbox: the node learns of the erasure and closes the socket.
    client = await connect(node.url, short_token(node, "erased-now", ttl_s=3600))
    other = await connect(node.url, short_token(node, "stays", ttl_s=3600))
    closed, _ = watch_disconnect(client)
    async with node.nexus.db.transaction() as session:
        await record_erased(session, "erased-now")
    await asyncio.wait_for(closed, 10)
    assert client.names == ["closing"]
    assert client.received[0]["code"] == "account_erased"
    assert other.sio.connected
    ack = await other.sio.call("ping", timeout=10)
    assert "pong" in ack
